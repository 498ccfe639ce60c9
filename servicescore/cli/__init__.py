"""The ``servicescore`` command: thin wiring from arguments to the modules that do the work.

Each command family is one module with a ``register(sub)`` adding its sub-commands; a handler
takes ``(settings, args)`` and returns the exit code. A ``ServicescoreError`` (a user's mistake,
an unreachable service) prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from servicescore.cli import (
    appraisal,
    deadletters,
    demo,
    infra,
    reads,
    report,
    roster,
    services,
    traffic,
)
from servicescore.core.errors import ServicescoreError
from servicescore.core.settings import Settings, load_settings

# in --help's order
FAMILIES = (demo, infra, services, reads, appraisal, report, roster, deadletters, traffic)
OWN_LOGGERS = ("servicescore", "streams", "consumers", "schemas", "appraisal")
SIGPIPE_EXIT = 141  # what a shell reports for a writer whose reader left (128 + SIGPIPE)


class Parser(argparse.ArgumentParser):
    """A bad flag is one line naming it, like every other user error."""

    def error(self, message: str):
        # The top parser's prog is "servicescore" itself: naming it again would say it twice.
        command = self.prog.removeprefix("servicescore").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"servicescore: {where}{message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="servicescore", description=(
        "After-sales ticket events into live per-engineer KPIs (售后服务绩效考核)."))
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for family in FAMILIES:
        family.register(sub)
    return parser


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
    if service:
        from servicescore.app.startup import quiet_first_start

        quiet_first_start()  # a new broker's missing coordinator is retried, not an error
    else:
        # A filter on the handler, not logger levels: clickhouse_connect sets urllib3's level
        # itself when it is imported, after this runs.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_a_library)


def _not_a_library(record: logging.LogRecord) -> bool:
    return record.name.startswith(OWN_LOGGERS) or record.levelno >= logging.CRITICAL
