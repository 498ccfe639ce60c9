"""The long-running commands: the whole pipeline (its worker in a child process), or its parts
to scale out.
``service=True`` keeps the libraries' warnings in their logs (see ``quiet_libraries``)."""

from __future__ import annotations

from servicescore.core.settings import Settings


def register(sub) -> None:
    sub.add_parser("run", help="stream processors + ClickHouse sink + HTTP API (the worker in "
                   "a child process)").set_defaults(handler=cmd_run, service=True)
    sub.add_parser("worker", help="the stream processors alone (scale out: N per group)"
                   ).set_defaults(handler=cmd_worker, service=True)
    sub.add_parser("sink", help="the ClickHouse sink (and the read API) alone"
                   ).set_defaults(handler=cmd_sink, service=True)


def cmd_run(settings: Settings, args) -> int:
    from servicescore.app.service import run_all
    from servicescore.app.startup import announce

    # On stdout, apart from the logs: where the API, the data and the broker are, once it
    # serves, and when it has caught up with what its topics already held.
    announce(settings, lambda line: print(f"servicescore run: {line}" if not line.startswith(" ")
                                          else line, flush=True))
    return run_all(settings)


def cmd_worker(settings: Settings, args) -> int:
    from servicescore.app.service import run_worker

    run_worker(settings)
    return 0


def cmd_sink(settings: Settings, args) -> int:
    from servicescore.app.service import run_sink

    run_sink(settings)
    return 0
