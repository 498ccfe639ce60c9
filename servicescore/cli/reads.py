"""The read commands: KPIs and their drill-down for a window, the live backlog, held events and
the consistency check. They read local storage, or the running service's API while it holds it."""

from __future__ import annotations

from servicescore.cli.arguments import MAX_LIMIT, limit
from servicescore.cli.output import FORMATS, emit
from servicescore.core.errors import StorageLocked
from servicescore.core.settings import Settings


def register(sub) -> None:
    kpis = _window_command(sub, "kpis", "KPIs of the window, per engineer or team")
    kpis.add_argument("--format", choices=FORMATS, default="table")
    kpis.add_argument("--group", choices=("engineer", "team"), default="engineer")
    kpis.set_defaults(handler=cmd_kpis)

    tickets = _window_command(sub, "tickets", "the drill-down: one row per resolution")
    tickets.add_argument("--format", choices=("json", "csv"), default="json")
    tickets.set_defaults(handler=cmd_tickets)

    live = sub.add_parser("live", help="backlog and oldest open ticket per engineer")
    live.add_argument("--format", choices=("json", "table"), default="table")
    live.set_defaults(handler=cmd_live)

    held = sub.add_parser("held", help="events waiting for their ticket-opened, with their age")
    held.add_argument("--limit", type=limit, default=100, help=f"1..{MAX_LIMIT} (default 100)")
    held.add_argument("--format", choices=("json", "table"), default="table")
    held.set_defaults(handler=cmd_held)

    check = sub.add_parser("check", help="do the facts agree with their tickets? (exit 1 if not)")
    check.add_argument("--format", choices=("json", "table"), default="table")
    check.set_defaults(handler=cmd_check)


def _window_command(sub, name: str, what: str):
    """A command over a window of time, of an engineer or a team."""
    command = sub.add_parser(name, help=what)
    command.add_argument("--from", dest="start",
                         help="start (inclusive): 2026-11-01, 2026-11-01T09:00+08:00, or a "
                              "period (2026-11, 2026-Q4, 2026) meaning its start")
    command.add_argument("--to", dest="end", help="end (exclusive), written like --from")
    command.add_argument("--period", help="instead of --from/--to: the whole period, e.g. "
                                          "2026-11, 2026-Q4 or 2026 (business timezone)")
    command.add_argument("--engineer")
    command.add_argument("--team")
    return command


def reader_for(settings: Settings):
    """Local storage when it can be opened; the running service's API when it is held."""
    from servicescore.app.reader import HttpReader, LocalReader
    from servicescore.app.service import open_storage

    try:
        return LocalReader(open_storage(settings), settings)
    except StorageLocked:
        return HttpReader(settings.api, settings.api_secret)


def window(settings: Settings, args) -> tuple[int, int]:
    from schemas.period import parse_window

    return parse_window(args.start, args.end, args.period, settings.timezone)


def cmd_kpis(settings: Settings, args) -> int:
    lo, hi = window(settings, args)
    rows = reader_for(settings).kpis(lo, hi, args.engineer, args.team, args.group)
    span = args.period or f"{args.start} .. {args.end}"
    emit(rows, args.format, title=f"KPIs {span}")
    return 0


def cmd_tickets(settings: Settings, args) -> int:
    lo, hi = window(settings, args)
    rows = reader_for(settings).tickets(lo, hi, args.engineer, args.team)
    local_times(rows, ("opened_at", "first_response_at", "episode_start", "resolved_at"),
                settings.timezone)
    emit(rows, args.format)
    return 0


def cmd_live(settings: Settings, args) -> int:
    emit(reader_for(settings).backlog(), args.format, title="Backlog")
    return 0


def cmd_held(settings: Settings, args) -> int:
    rows = reader_for(settings).held(args.limit)
    local_times(rows, ("occurred_at", "held_since"), settings.timezone)
    emit(rows, args.format, title="Held events (waiting for their ticket-opened)")
    return 0


def cmd_check(settings: Settings, args) -> int:
    found = reader_for(settings).check()
    if args.format == "json":
        emit(found, "json")
    else:
        print(f"{found['inconsistent_tickets']} ticket(s) whose facts disagree with their row")
        if found["examples"]:
            emit(found["examples"], "table", title="First of them")
    return 1 if found["inconsistent_tickets"] else 0


def local_times(rows: list[dict], keys: tuple[str, ...], timezone: str) -> None:
    """Instants as people read them: ISO 8601 in the business timezone."""
    from schemas.period import format_instant

    for row in rows:
        for key in keys:
            row[key] = format_instant(row[key], timezone)
