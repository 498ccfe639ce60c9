"""The ``servicescore`` command: thin wiring from arguments to the modules that do the work.

A ``ServicescoreError`` (a user's mistake, an unreachable service) prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
import time
from datetime import date
from pathlib import Path

from servicescore.core.errors import ServicescoreError, StorageLocked
from servicescore.core.settings import ROOT, Settings, load_settings

FORMATS = ("json", "table", "csv")
OWN_LOGGERS = ("servicescore", "streams", "consumers", "schemas", "appraisal")
MAX_LIMIT = 10_000  # the API's bound too
SIGPIPE_EXIT = 141  # what a shell reports for a writer whose reader left (128 + SIGPIPE)


class Parser(argparse.ArgumentParser):
    """A bad flag is one line naming it, like every other user error."""

    def error(self, message: str):
        # The top parser's prog is "servicescore" itself: naming it again would say it twice.
        command = self.prog.removeprefix("servicescore").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"servicescore: {where}{message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            code = command(argv)
        except SystemExit as exc:  # argparse: --help, a bad flag
            code = exc.code if isinstance(exc.code, int) else 2
        sys.stdout.flush()  # a reader that left shows here, not as noise at interpreter exit
        return code
    except BrokenPipeError:
        # `servicescore tickets | head`: the reader has what it wanted; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT


def command(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        settings = load_settings()
        quiet_libraries(settings, service=getattr(args, "service", False))
        result = args.handler(settings, args)
        return result or 0
    except ServicescoreError as exc:
        print(f"servicescore: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def quiet_libraries(settings: Settings, service: bool) -> None:
    """Services log warnings; a short command speaks only through its one-line result, so the
    Kafka and ClickHouse clients' own connection warnings must not reach the terminal."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    if not service:
        # A filter on the handler, not logger levels: clickhouse_connect sets urllib3's level
        # itself when it is imported, after this runs.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_a_library)


def _not_a_library(record: logging.LogRecord) -> bool:
    return record.name.startswith(OWN_LOGGERS) or record.levelno >= logging.CRITICAL


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="servicescore", description=(
        "After-sales ticket events into live per-engineer KPIs (售后服务绩效考核)."))
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    kafka = sub.add_parser("kafka", help="a local single-node Kafka (KRaft) for development")
    kafka.add_argument("action", choices=("start", "stop", "status"))
    kafka.set_defaults(handler=cmd_kafka)

    topics = sub.add_parser("topics", help="create the Kafka topics (idempotent)")
    topics.add_argument("action", choices=("create",))
    topics.set_defaults(handler=cmd_topics)

    sub.add_parser("migrate", help="apply the sql/ migrations in order (idempotent)"
                   ).set_defaults(handler=cmd_migrate)
    sub.add_parser("config", help="print the settings in effect (secrets masked)"
                   ).set_defaults(handler=cmd_config)
    sub.add_parser("run", help="stream processors + ClickHouse sink + HTTP API in one process"
                   ).set_defaults(handler=cmd_run, service=True)
    sub.add_parser("worker", help="the stream processors alone (scale out: N per group)"
                   ).set_defaults(handler=cmd_worker, service=True)
    sub.add_parser("sink", help="the ClickHouse sink (and the read API) alone"
                   ).set_defaults(handler=cmd_sink, service=True)

    for name, what in (("kpis", "KPIs of the window, per engineer or team"),
                       ("tickets", "the drill-down: one row per resolution")):
        q = sub.add_parser(name, help=what)
        q.add_argument("--from", dest="start",
                       help="start (inclusive): 2026-11-01, 2026-11-01T09:00+08:00, or a "
                            "period (2026-11, 2026-Q4, 2026) meaning its start")
        q.add_argument("--to", dest="end", help="end (exclusive), written like --from")
        q.add_argument("--period", help="instead of --from/--to: the whole period, e.g. "
                                        "2026-11, 2026-Q4 or 2026 (business timezone)")
        q.add_argument("--engineer")
        q.add_argument("--team")
        q.add_argument("--format", choices=FORMATS if name == "kpis" else ("json", "csv"),
                       default="table" if name == "kpis" else "json")
        if name == "kpis":
            q.add_argument("--group", choices=("engineer", "team"), default="engineer")
        q.set_defaults(handler=cmd_kpis if name == "kpis" else cmd_tickets)

    live = sub.add_parser("live", help="backlog and oldest open ticket per engineer")
    live.add_argument("--format", choices=("json", "table"), default="table")
    live.set_defaults(handler=cmd_live)

    held = sub.add_parser("held", help="events waiting for their ticket-opened, with their age")
    held.add_argument("--limit", type=_limit, default=100, help=f"1..{MAX_LIMIT} (default 100)")
    held.add_argument("--format", choices=("json", "table"), default="table")
    held.set_defaults(handler=cmd_held)

    check = sub.add_parser("check", help="do the facts agree with their tickets? (exit 1 if not)")
    check.add_argument("--format", choices=("json", "table"), default="table")
    check.set_defaults(handler=cmd_check)

    roster = sub.add_parser("roster", help="reference data: engineers, roles, teams")
    roster.add_argument("action", choices=("import",))
    roster.add_argument("file", type=Path, help="CSV: engineer_id,name,role,team_id,active")
    roster.set_defaults(handler=cmd_roster)

    dlq = sub.add_parser("dlq", help="dead letters: list them, republish them after a fix")
    dlq.add_argument("action", choices=("list", "replay"))
    dlq.add_argument("--topic", help="only dead letters from this source topic")
    dlq.add_argument("--limit", type=_limit, default=100, help=f"1..{MAX_LIMIT} (default 100)")
    dlq.add_argument("--format", choices=("json", "table"), default="table")
    dlq.set_defaults(handler=cmd_dlq)

    replay = sub.add_parser("replay", help='publish JSON Lines {"topic": ..., "event": {...}}')
    replay.add_argument("files", nargs="+", type=Path)
    replay.set_defaults(handler=cmd_replay)

    sim = sub.add_parser("simulate", help="realistic synthetic after-sales traffic")
    sim.add_argument("--start", required=True, type=_date, help="first day, e.g. 2026-11-01")
    sim.add_argument("--days", required=True, type=_bounded(1, 3660), help="1..3660")
    sim.add_argument("--engineers", required=True, type=_bounded(1, 10_000), help="1..10000")
    sim.add_argument("--seed", type=int, default=1)
    target = sim.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="JSON Lines file (roster CSV beside it)")
    target.add_argument("--to-kafka", action="store_true", help="publish to the topics")
    sim.set_defaults(handler=cmd_simulate)
    return p


def _date(text: str) -> date:
    from schemas.period import FIRST_YEAR, LAST_YEAR

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR - 10:  # room for --days after it
        raise argparse.ArgumentTypeError(f"a date from {FIRST_YEAR} to {LAST_YEAR - 10}: {text!r}")
    return day


def _bounded(low: int, high: int):
    """An argparse type: an integer in [low, high], written in ASCII digits (int() would also
    read other scripts' digits, and str.isdigit accepts '²', which int() refuses)."""

    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}: {text!r}")
        return int(text)

    return parse


_limit = _bounded(1, MAX_LIMIT)


# --------------------------------------------------------------------------- commands


def cmd_kafka(settings: Settings, args) -> int:
    from servicescore.core.settings import host_port, writable_folder
    from servicescore.dev.broker import LocalKafka

    _, port = host_port(settings.kafka_bootstrap.split(",")[0])
    folder = writable_folder(settings.kafka_folder, "SERVICESCORE_KAFKA_HOME"
                             if settings.kafka_home else "SERVICESCORE_DATA_DIR")
    broker = LocalKafka(folder.resolve(), settings.kafka_lib,
                        ROOT / "deploy" / "kafka" / "pom.xml", port=port,
                        heap=settings.kafka_heap)
    if args.action == "start":
        print(f"Kafka is up at {broker.start()} (log: {broker.log_file})")
    elif args.action == "stop":
        print("Kafka stopped" if broker.stop() else "Kafka was not running")
    else:
        status = broker.status()
        print(json.dumps(status, indent=2))
        return 0 if status["running"] else 3
    return 0


def cmd_topics(settings: Settings, args) -> int:
    from servicescore.kafka import topics

    created = topics.run(topics.create_topics(settings))
    total = len(topics.topic_plan(settings))
    print(f"created {len(created)} topic(s), {total - len(created)} already existed"
          + (": " + ", ".join(created) if created else ""))
    return 0


def cmd_migrate(settings: Settings, args) -> int:
    from servicescore.app.service import open_storage

    storage = open_storage(settings, migrate=False)
    applied = storage.migrate()
    print(f"applied {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def cmd_config(settings: Settings, args) -> int:
    print(json.dumps(settings.masked(), indent=2, ensure_ascii=False))
    return 0


def cmd_run(settings: Settings, args) -> int:
    from servicescore.app.service import run_worker

    run_worker(settings, with_sink=True)
    return 0


def cmd_worker(settings: Settings, args) -> int:
    from servicescore.app.service import run_worker

    run_worker(settings)
    return 0


def cmd_sink(settings: Settings, args) -> int:
    from servicescore.app.service import run_sink

    run_sink(settings)
    return 0


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
    from schemas.period import format_instant

    lo, hi = window(settings, args)
    rows = reader_for(settings).tickets(lo, hi, args.engineer, args.team)
    for row in rows:
        for key in ("opened_at", "first_response_at", "episode_start", "resolved_at"):
            row[key] = format_instant(row[key], settings.timezone)
    emit(rows, args.format)
    return 0


def cmd_live(settings: Settings, args) -> int:
    emit(reader_for(settings).backlog(), args.format, title="Backlog")
    return 0


def cmd_held(settings: Settings, args) -> int:
    from schemas.period import format_instant

    rows = reader_for(settings).held(args.limit)
    for row in rows:
        for key in ("occurred_at", "held_since"):
            row[key] = format_instant(row[key], settings.timezone)
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


def cmd_roster(settings: Settings, args) -> int:
    from servicescore.app import roster

    rows = roster.read_csv(args.file)
    try:
        from servicescore.app.service import open_storage

        roster.store(open_storage(settings), rows)
        where = "ClickHouse"
    except StorageLocked:
        from servicescore.kafka import topics

        topics.run(roster.publish(settings, rows))
        where = f"topic {settings.topic('engineer-roster')} (the running sink stores it)"
    print(f"imported {len(rows)} engineer(s) into {where}")
    return 0


def cmd_dlq(settings: Settings, args) -> int:
    reader = reader_for(settings)
    if args.action == "list":
        letters = reader.dead_letters(args.limit, args.topic)
        shown = [{k: v for k, v in row.items() if k != "raw_base64"} for row in letters]
        emit(shown, args.format, title="Dead letters")
        return 0
    sent = reader.replay_dead_letters(args.limit, args.topic)
    print(f"republished {sent} dead letter(s) to their source topics")
    return 0


def cmd_replay(settings: Settings, args) -> int:
    from servicescore.kafka import publish, topics

    records, problems = publish.read_jsonl(args.files)
    for problem in problems:
        print(f"servicescore: {problem}", file=sys.stderr)
    # Nothing readable: the problems above say it all, without a Kafka error on top.
    sent = topics.run(publish.publish(settings, records)) if records else 0
    print(f"published {sent} event(s)" + (f", skipped {len(problems)} bad line(s)"
                                          if problems else ""))
    return 1 if problems else 0


def cmd_simulate(settings: Settings, args) -> int:
    from servicescore.dev import simulate

    started = time.monotonic()
    if args.out and not args.out.parent.is_dir():
        raise ServicescoreError(f"--out: no folder {args.out.parent} to write {args.out.name} in")
    traffic = simulate.simulate(args.start, args.days, args.engineers, args.seed,
                                settings.timezone)
    if args.out:
        roster_file = args.out.with_suffix(".roster.csv")
        try:
            count = simulate.write_jsonl(traffic.records, args.out)
            simulate.write_roster_csv(traffic.roster, roster_file)
        except OSError as exc:
            raise ServicescoreError(f"--out: cannot write {exc.filename or args.out}: "
                                    f"{exc.strerror or exc}") from None
        print(f"wrote {count} events to {args.out} and {len(traffic.roster)} engineers to "
              f"{roster_file} in {time.monotonic() - started:.1f}s")
        return 0
    from servicescore.app import roster
    from servicescore.kafka import publish, topics

    topics.run(topics.create_topics(settings))
    topics.run(roster.publish(settings, [roster.from_engineer(e) for e in traffic.roster]))
    sent = topics.run(publish.publish(settings, traffic.records))
    print(f"published {sent} events and {len(traffic.roster)} engineers to Kafka at "
          f"{settings.kafka_bootstrap}")
    return 0


# --------------------------------------------------------------------------- output


def emit(rows: list[dict], fmt: str, title: str | None = None) -> None:
    if fmt == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif fmt == "csv":
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v, ensure_ascii=False)
                                 if isinstance(v, (list, dict)) else v for k, v in row.items()})
        sys.stdout.write(out.getvalue())
    else:
        table(rows, title)


def table(rows: list[dict], title: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=title, show_lines=False)
    columns = list(rows[0]) if rows else ["(nothing in this window)"]
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*(_cell(row[c]) for c in columns))
    Console(width=max(120, 14 * len(columns))).print(shown)


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)

