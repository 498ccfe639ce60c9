"""The period close (appraisal.md): close a period, list its frozen appraisals, the adjustments
later events would make, and what-if scoring with any scheme. Like the reads, they work on the
local storage or, while ``run`` holds it, through its API (close needs the API token there)."""

from __future__ import annotations

from pathlib import Path

from servicescore.cli.output import FORMATS, emit
from servicescore.cli.reads import reader_for
from servicescore.core.errors import ServicescoreError
from servicescore.core.settings import Settings

# The columns a person reads first; json and csv keep every field.
_SUMMARY = ("engineer_id", "role", "score", "grade", "grade_label", "bonus", "flags", "status")


def register(sub) -> None:
    close = sub.add_parser("close", help="score a period and freeze the appraisals")
    close.add_argument("--period", required=True, help="2026-11, 2026-Q4 or 2026")
    close.add_argument("--early", action="store_true",
                       help="close before the period's end plus the scheme's grace days")
    close.add_argument("--supersede", metavar="REASON",
                       help="close a closed period again; the old results stay, superseded")
    close.set_defaults(handler=cmd_close)

    shown = sub.add_parser("appraisals", help="the frozen appraisals of a closed period")
    shown.add_argument("--period", required=True)
    shown.add_argument("--all", action="store_true", help="superseded closes too")
    shown.add_argument("--format", choices=FORMATS, default="table")
    shown.set_defaults(handler=cmd_appraisals)

    later = sub.add_parser("adjustments",
                           help="frozen values beside their values now, and what they would give")
    later.add_argument("--period", required=True)
    later.add_argument("--format", choices=("json", "table"), default="table")
    later.set_defaults(handler=cmd_adjustments)

    what_if = sub.add_parser("score", help="what-if: score a period with a scheme, freeze nothing")
    what_if.add_argument("--period", required=True)
    what_if.add_argument("--scheme", type=Path, help="a scheme file (default: the one in force)")
    what_if.add_argument("--format", choices=FORMATS, default="table")
    what_if.set_defaults(handler=cmd_score)

    assess = sub.add_parser("assess", help="people's assessments (compliance audits, 360 ...)")
    assess.add_argument("action", choices=("import",))
    assess.add_argument("file", type=Path, help="CSV: engineer_id,dimension,score,"
                                                "assessor_role,assessor_id,period,comment")
    assess.set_defaults(handler=cmd_assess)


def cmd_assess(settings: Settings, args) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServicescoreError(f"cannot read {args.file}: "
                                f"{getattr(exc, 'strerror', None) or exc}") from None
    from servicescore.app.reader import publish_assessments

    # Straight to Kafka: the storage is not needed, whoever holds it.
    done = publish_assessments(settings, text, str(args.file))
    print(f"published {done['published']} assessment(s) from {args.file}")
    return 0


def cmd_close(settings: Settings, args) -> int:
    done = reader_for(settings).close(args.period, args.early, args.supersede)
    replaced = f", superseding {done['supersedes'][:12]}" if done.get("supersedes") else ""
    print(f"closed {done['period']}: {done['engineers']} engineer(s) frozen "
          f"(close {done['close_id'][:12]}, inputs {done['content_hash'][:12]}{replaced})")
    return 0


def cmd_appraisals(settings: Settings, args) -> int:
    rows = reader_for(settings).appraisals(args.period, args.all)
    if not rows:
        raise ServicescoreError(f"{args.period} is not closed (servicescore close --period "
                                f"{args.period})")
    emit(rows if args.format != "table" else [{k: r[k] for k in _SUMMARY} for r in rows],
         args.format, title=f"Appraisals {args.period}")
    return 0


def cmd_adjustments(settings: Settings, args) -> int:
    rows = reader_for(settings).adjustments(args.period)
    if args.format == "table":
        rows = [{**{k: v for k, v in r.items() if k != "changed"},
                 "changed": ", ".join(c["kpi"] for c in r["changed"]) or "—"} for r in rows]
    emit(rows, args.format, title=f"Adjustments {args.period} (frozen → now)")
    return 0


def cmd_score(settings: Settings, args) -> int:
    text = None
    if args.scheme is not None:
        try:
            text = args.scheme.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ServicescoreError(f"cannot read scheme {args.scheme}: "
                                    f"{getattr(exc, 'strerror', None) or exc}") from None
    rows = reader_for(settings).score(args.period, text)
    columns = ("engineer_id", "role", "score", "grade", "bonus", "frozen_score",
               "frozen_grade", "frozen_bonus")
    emit(rows if args.format != "table" else [{k: r[k] for k in columns} for r in rows],
         args.format, title=f"What-if {args.period}")
    return 0
