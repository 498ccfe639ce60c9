"""The read commands: KPIs and their drill-down for a window, the live backlog, held events and
the consistency check. They read local storage, or the running service's API while it holds it."""

from __future__ import annotations

import argparse
import difflib

from schemas.kpis import FIELDS
from servicescore.cli.arguments import MAX_LIMIT, limit
from servicescore.cli.output import FORMATS, emit
from servicescore.core.errors import ServicescoreError, StorageLocked
from servicescore.core.settings import Settings

# What a manager reads first (appraisal.md's headline KPIs): volume, speed, handling time,
# quality, satisfaction, complaints. --fields and --all show the rest; json and csv have all.
MANAGER_FIELDS = ("resolutions", "frt_sla_rate", "aht_avg_s", "fcr_rate", "repeat_rate_7d",
                  "csat_avg", "nps", "complaints")
# The drill-down's columns (servicescore/queries/drilldown.py), for a CSV header without rows.
TICKET_COLUMNS = (
    "ticket_id", "episode", "customer_id", "category", "priority", "channel", "opened_at",
    "first_response_at", "first_responder_id", "frt_s", "ticket_escalations",
    "escalated_in_episode", "episode_start", "resolved_at", "resolved_by", "team_id",
    "handling_time_s", "handling_time_bh_s", "first_contact", "reopened_7d", "reopened_30d",
    "new_ticket_7d", "new_ticket_30d", "repeat_7d", "repeat_30d", "survey_csat", "survey_nps")
TICKET_TIMES = ("opened_at", "first_response_at", "episode_start", "resolved_at")


def register(sub) -> None:
    kpis = _window_command(sub, "kpis", "KPIs of the window, per engineer or team",
                           epilog="fields: " + ", ".join(FIELDS))
    kpis.add_argument("--format", choices=FORMATS, default="table",
                      help="table (default: the headline KPIs in human units), or json and "
                           "csv (every field, exact values)")
    kpis.add_argument("--group", choices=("engineer", "team"), default="engineer")
    shown = kpis.add_mutually_exclusive_group()
    shown.add_argument("--fields", type=field_list, metavar="NAME,...",
                       help="only these KPI fields (in every format), e.g. "
                            "resolutions,csat_avg,frt_p90_s")
    shown.add_argument("--all", action="store_true", help="every KPI field in the table")
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


def _window_command(sub, name: str, what: str, epilog: str | None = None):
    """A command over a window of time, of an engineer or a team."""
    command = sub.add_parser(name, help=what, epilog=epilog)
    command.add_argument("--from", dest="start",
                         help="start (inclusive): 2026-11-01, 2026-11-01T09:00+08:00, or a "
                              "period (2026-11, 2026-Q4, 2026) meaning its start")
    command.add_argument("--to", dest="end", help="end (exclusive), written like --from")
    command.add_argument("--period", help="instead of --from/--to: the whole period, e.g. "
                                          "2026-11, 2026-Q4 or 2026 (business timezone)")
    command.add_argument("--engineer")
    command.add_argument("--team")
    return command


def field_list(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated KPI field names, each one of the registry's."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise argparse.ArgumentTypeError("give one or more KPI field names, comma-separated")
    for name in names:
        if name not in FIELDS:
            close = difflib.get_close_matches(name, FIELDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise argparse.ArgumentTypeError(
                f"unknown KPI field {name!r}{hint}; `servicescore kpis --help` lists them")
    return names


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
    reader = reader_for(settings)
    rows = reader.kpis(lo, hi, args.engineer, args.team, args.group)
    span = args.period or f"{args.start} .. {args.end}"
    if not rows and args.engineer:
        require_known(reader, args.engineer)
    ids = ("engineer_id", "team_id") if args.group == "engineer" else ("team_id",)
    if args.fields:
        columns = (*ids, *args.fields)
        rows = [{k: row[k] for k in columns} for row in rows]
    elif args.all or args.format != "table":
        columns = (*ids, *FIELDS)
    else:
        columns = (*ids, *MANAGER_FIELDS)
    shown = len(columns) - len(ids)
    note = None if shown == len(FIELDS) else (
        f"{shown} of {len(FIELDS)} KPI fields: --all for every one, --fields NAME,... to "
        "choose; --format json or csv for exact values")
    who = f" of {args.engineer}" if args.engineer else f" of team {args.team}" \
        if args.team else ""
    emit(rows, args.format, title=f"KPIs {span}{who}, per {args.group}", columns=columns,
         note=note, empty=f"no KPI sample{who} in {span}")
    return 0


def require_known(reader, engineer: str) -> None:
    """An engineer with nothing in the window is either quiet or unknown (a typo): unknown
    means no KPI sample at any time and no open ticket, which is what the storage can say
    (the roster is reference data, read by the KPIs only for teams)."""
    from schemas.period import MAX_MS, MIN_MS

    if reader.kpis(MIN_MS, MAX_MS, engineer):
        return
    if any(row.get("engineer_id") == engineer for row in reader.backlog()):
        return
    raise ServicescoreError(f"unknown engineer {engineer!r}: no ticket, survey, complaint or "
                            "assessment names them")


def cmd_tickets(settings: Settings, args) -> int:
    lo, hi = window(settings, args)
    reader = reader_for(settings)
    rows = reader.tickets(lo, hi, args.engineer, args.team)
    if not rows and args.engineer:
        require_known(reader, args.engineer)
    local_times(rows, TICKET_TIMES, settings.timezone)
    emit(rows, args.format, columns=list(rows[0]) if rows else TICKET_COLUMNS)
    return 0


def cmd_live(settings: Settings, args) -> int:
    rows = reader_for(settings).backlog()
    local_times(rows, ("oldest_open_since",), settings.timezone)
    emit(rows, args.format, title=f"Backlog: open tickets per engineer (times in "
                                  f"{settings.timezone})", empty="no open ticket")
    return 0


def cmd_held(settings: Settings, args) -> int:
    rows = reader_for(settings).held(args.limit)
    local_times(rows, ("occurred_at", "held_since"), settings.timezone)
    emit(rows, args.format, title=f"Held events, waiting for their ticket-opened (times in "
                                  f"{settings.timezone})", empty="no held event")
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
            if key in row:
                row[key] = format_instant(row[key], timezone)
