"""``dlq list / replay``: the dead letters, and republishing them to their source topics after
a fix."""

from __future__ import annotations

from servicescore.cli.arguments import MAX_LIMIT, limit
from servicescore.cli.output import emit
from servicescore.cli.reads import local_times, reader_for
from servicescore.core.settings import Settings


def register(sub) -> None:
    dlq = sub.add_parser("dlq", help="dead letters: list them, republish them after a fix")
    dlq.add_argument("action", choices=("list", "replay"))
    dlq.add_argument("--topic", help="only dead letters from this source topic")
    dlq.add_argument("--limit", type=limit, default=100, help=f"1..{MAX_LIMIT} (default 100)")
    dlq.add_argument("--format", choices=("json", "table"), default="table")
    dlq.set_defaults(handler=cmd_dlq)


def cmd_dlq(settings: Settings, args) -> int:
    reader = reader_for(settings)
    if args.action == "list":
        letters = reader.dead_letters(args.limit, args.topic)
        # The raw bytes are for replay; a table also leaves out their hash (64 characters).
        hidden = ("raw_base64",) if args.format == "json" else ("raw_base64", "raw_sha256")
        shown = [{k: v for k, v in row.items() if k not in hidden} for row in letters]
        local_times(shown, ("rejected_at", "replayed_at"), settings.timezone)
        emit(shown, args.format, title=f"Dead letters, newest first (times in "
                                       f"{settings.timezone})", empty="no dead letter")
        return 0
    sent = reader.replay_dead_letters(args.limit, args.topic)
    print(f"republished {sent} dead letter(s) to their source topics")
    return 0
