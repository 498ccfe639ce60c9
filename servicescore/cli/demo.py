"""``servicescore demo``: the one-command tour. It starts a local Kafka (unless
SERVICESCORE_KAFKA_BOOTSTRAP names one), runs the pipeline on the embedded ClickHouse in a
folder of its own, publishes a simulated month, shows the progress and the month's KPIs live,
closes the month, writes the appraisal sheets and ends with the results and where to look.
The work is servicescore/dev/demo.py; this module shows it. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import sys
import time
from pathlib import Path

from servicescore.cli.arguments import bounded
from servicescore.cli.output import emit, human, render, terminal_width
from servicescore.cli.report import LANGS
from servicescore.core.settings import Settings

SUMMARY = ("engineer_id", "role", "score", "grade", "grade_label", "bonus")
LIVE = ("team_id", "resolutions", "frt_sla_rate", "aht_avg_s", "fcr_rate", "csat_avg",
        "complaints")
PLAIN_EVERY_S = 5.0  # a progress line this often when the output is not a terminal


def month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"a month is YYYY-MM: {text!r}")
    from schemas.period import FIRST_YEAR, LAST_YEAR

    if not FIRST_YEAR <= int(text[:4]) <= LAST_YEAR:
        raise argparse.ArgumentTypeError(f"a month from {FIRST_YEAR} to {LAST_YEAR}: {text!r}")
    return text


def register(sub) -> None:
    demo = sub.add_parser(
        "demo", help="the tour: Kafka, the pipeline, a simulated month, its close and "
                     "appraisal sheets, in a folder of its own",
        description="Starts a local Kafka (unless SERVICESCORE_KAFKA_BOOTSTRAP names one), "
                    "runs the pipeline on the embedded ClickHouse, publishes a simulated "
                    "month, closes it and writes the appraisal sheets. Everything it starts "
                    "is stopped at the end or on Ctrl-C.")
    demo.add_argument("--month", type=month, help="the month to simulate and close "
                                                  "(default: last month)")
    demo.add_argument("--days", type=bounded(1, 31),
                      help="simulate only the month's first N days (default: all of it)")
    demo.add_argument("--engineers", type=bounded(1, 1000), default=30,
                      help="1..1000 (default 30)")
    demo.add_argument("--seed", type=bounded(0, 2**31), default=1)
    demo.add_argument("--data-dir", type=Path,
                      help="the demo's folder, cleared at each run (default: demo/ in the "
                           "data folder, see `servicescore config`)")
    demo.add_argument("--lang", choices=LANGS, default="zh", help="of the sheets: zh or en")
    demo.add_argument("--format", choices=("table", "json"), default="table",
                      help="of the summary on stdout (json: the progress goes to stderr)")
    demo.add_argument("--keep-running", action="store_true",
                      help="after the summary, keep the pipeline and its API up until Ctrl-C")
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(settings: Settings, args) -> int:
    from servicescore.dev.demo import Demo, Plan, month_days, previous_month

    chosen = args.month or previous_month(settings.timezone)
    _, length = month_days(chosen, settings.timezone)
    plan = Plan(folder=args.data_dir or settings.data_dir / "demo", month=chosen,
                days=min(args.days or length, length), engineers=args.engineers,
                seed=args.seed, lang=args.lang)
    demo = Demo(settings, plan)
    stream = sys.stderr if args.format == "json" else sys.stdout
    show = RichShow(stream) if stream.isatty() else PlainShow(stream)
    started = time.monotonic()
    # SIGTERM ends it like Ctrl-C: whatever it started is stopped on the way out.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        show.say(f"servicescore demo: {plan.month} (days 1-{plan.days}), {plan.engineers} "
                 f"engineers, in {demo.folder}")
        with show:
            results = _tour(demo, show)
        if args.keep_running:
            _summary(demo, results, args.format, time.monotonic() - started, running=True)
            with contextlib.suppress(KeyboardInterrupt):  # here, the way to end it
                _wait_for_ctrl_c(demo)
            return 0
    except KeyboardInterrupt:
        show.say("interrupted: stopping what the demo started")
        raise
    finally:
        stopped = _stop(demo)
        signal.signal(signal.SIGTERM, previous)
        if stopped:
            show.say(f"stopped: {', '.join(stopped)}")
    _summary(demo, results, args.format, time.monotonic() - started, running=False)
    return 0


def _tour(demo, show) -> dict:
    """The steps in order; what the summary needs."""
    demo.prepare()
    fetching = " (fetching its jars with Maven first: a few minutes, once)" \
        if demo.needs_fetch else ""
    which = " the demo's own broker" if demo.own_broker else ""
    with show.step("kafka", f"Kafka: starting{which}{fetching}") as done:
        bootstrap = demo.start_kafka()
        done(f"Kafka at {bootstrap}" + (" (the demo's own)" if demo.own_broker
                                        else " (configured)"))
    with show.step("service", "pipeline: starting servicescore run") as done:
        demo.start_service()
        # Published only once it serves: at start the service closes last month by itself
        # when it has samples and is due, and the demo's month usually is (Demo.close).
        demo.wait_serving()
        done(f"pipeline: servicescore run, API http://{demo.api}")
    show.count("publish", "published", "events")
    events = demo.publish(lambda n, total: show.advance("publish", n, total))
    show.count("process", "processed", "events", events)
    demo.follow(lambda p: show.advance("process", min(p.events_done, events), events,
                                       f"{p.behind:,} message(s) to go"),
                show.kpis)
    show.advance("process", events, events, "every fact stored")
    with show.step("close", f"closing {demo.plan.month}") as done:
        closed = demo.close()
        done(f"closed {closed['period']}: {closed['engineers']} engineer(s) frozen "
             f"(close {closed['close_id'][:12]})")
    with show.step("report", "writing the appraisal sheets") as done:
        index = demo.write_report()
        done(f"appraisal sheets written: {index}")
    return {"events": events, "close": closed, "appraisals": demo.appraisals(),
            "bootstrap": bootstrap}


def _stop(demo) -> list[str]:
    """Stop what was started, not to be cut short by another Ctrl-C."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return demo.stop()
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _wait_for_ctrl_c(demo) -> None:
    while demo.service is not None and demo.service.poll() is None:
        time.sleep(0.5)


def _summary(demo, results: dict, fmt: str, seconds: float, running: bool) -> None:
    rows = [{k: r[k] for k in SUMMARY} for r in results["appraisals"]]
    plan = demo.plan
    env = f"SERVICESCORE_DATA_DIR={demo.folder}"
    if running:
        env += f" SERVICESCORE_API={demo.api} SERVICESCORE_API_TOKEN={demo.token}"
    where = {"report": str(demo.report_index), "report_url": demo.report_index.as_uri(),
             "data_dir": str(demo.folder), "service_log": str(demo.service_log),
             "explore": f"{env} servicescore kpis --period {plan.month}"}
    if running:
        where["board"] = f"http://{demo.api}/?period={plan.month}"
        where["api"] = f"http://{demo.api}/kpis?period={plan.month}"
    if fmt == "json":
        print(json.dumps({"period": plan.month, "days": plan.days,
                          "engineers": plan.engineers, "events": results["events"],
                          "close_id": results["close"]["close_id"], "appraisals": rows,
                          **where, "seconds": round(seconds, 1)}, ensure_ascii=False, indent=1))
        return
    emit(rows, "table", title=f"Appraisals {plan.month} (close "
                              f"{results['close']['close_id'][:12]})", columns=SUMMARY)
    bonus = sum(float(r["bonus"]) for r in rows if r["bonus"] is not None)
    grades: dict[str, int] = {}
    for row in rows:
        grades[row["grade_label"] or row["grade"]] = grades.get(
            row["grade_label"] or row["grade"], 0) + 1
    print(f"{len(rows)} engineer(s): " + ", ".join(f"{g} {n}" for g, n in grades.items())
          + f"; bonus total {bonus:g}")
    print()
    print(f"Open the appraisal sheets: {where['report_url']}")
    if running:
        print(f"The live board:            {where['board']} (its grades ask for the token "
              f"below)")
        print(f"The API:                   {where['api']} (Ctrl-C stops the demo)")
    print(f"Explore the data:          {where['explore']}")
    print(f"The pipeline's log:        {where['service_log']}")
    print(f"{results['events']:,} events in {human('took_s', seconds)}"
          + ("" if running else "; everything the demo started is stopped"))


class PlainShow:
    """Progress as lines, for a file or a pipe: one per step, a progress line every few
    seconds, the month's KPIs so far with it."""

    def __init__(self, stream):
        self.stream = stream
        self.started = time.monotonic()
        self.totals: dict[str, tuple[str, str]] = {}
        self.last_line = 0.0
        self.latest_kpis = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _stamp(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.started:6.1f}s] {text}")

    @contextlib.contextmanager
    def step(self, key: str, text: str):
        said = []
        yield said.append
        self._stamp(said[-1] if said else text)

    def count(self, key: str, verb: str, unit: str, total: int | None = None) -> None:
        self.totals[key] = (verb, unit)

    def advance(self, key: str, done: int, total: int, detail: str = "") -> None:
        verb, unit = self.totals[key]
        final = done >= total and detail in ("", "every fact stored")
        if not done or not final and time.monotonic() - self.last_line < PLAIN_EVERY_S:
            return
        self.last_line = time.monotonic()
        share = f" ({done / total:.0%})" if total else ""
        self._stamp(f"{verb} {done:,}/{total:,} {unit}{share}"
                    + (f", {detail}" if detail else "")
                    + (f" · so far: {self.latest_kpis}" if self.latest_kpis and key ==
                       "process" else ""))

    def kpis(self, rows: list[dict]) -> None:
        self.latest_kpis = department_line(rows)


class RichShow:
    """Progress on a terminal: a line per step, bars for publishing and processing, and the
    month's KPIs per team so far underneath, redrawn in place."""

    def __init__(self, stream):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text

        class Counted(ProgressColumn):
            """A column shown for the counted tasks (publish, process) only, not the steps."""

            def __init__(self, column):
                super().__init__()
                self.column = column

            def render(self, task):
                return self.column.render(task) if task.fields.get("counted") else Text("")

        self.console = Console(file=stream)
        self.tasks: dict[str, int] = {}
        self.table = None
        show = self

        class WithKpis(Progress):
            def get_renderables(self):
                yield self.make_tasks_table(self.tasks)
                if show.table is not None:
                    yield show.table

        self.progress = WithKpis(SpinnerColumn(finished_text="[green]✓"),
                                 TextColumn("{task.description}"), Counted(BarColumn()),
                                 Counted(MofNCompleteColumn()),
                                 TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                                 console=self.console, transient=False)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    @contextlib.contextmanager
    def step(self, key: str, text: str):
        task = self.progress.add_task(text, total=None, detail="", counted=False)
        said = []
        yield said.append
        self.progress.update(task, description=said[-1] if said else text, total=1,
                             completed=1)

    def count(self, key: str, verb: str, unit: str, total: int | None = None) -> None:
        self.tasks[key] = self.progress.add_task(f"{verb} {unit}", total=total, detail="",
                                                 counted=True)

    def advance(self, key: str, done: int, total: int, detail: str = "") -> None:
        self.progress.update(self.tasks[key], completed=done, total=total, detail=detail)

    def kpis(self, rows: list[dict]) -> None:
        from rich.text import Text

        shown = [{k: r.get(k) for k in LIVE} for r in rows]
        text = render(shown, LIVE, "The month so far, per team", terminal_width(),
                      note=department_line(rows), empty="no KPI sample yet")
        self.table = Text(text.rstrip("\n"))


def department_line(rows: list[dict]) -> str:
    """The department's headline numbers from the teams' rows, weighted by their samples."""
    if not rows:
        return ""
    resolutions = sum(r["resolutions"] for r in rows)
    responses = sum(r["first_responses"] for r in rows)
    surveys = sum(r["surveys"] for r in rows)

    def weighted(field: str, weight: str, total: int):
        values = [(r[field], r[weight]) for r in rows if r[field] is not None]
        return sum(v * w for v, w in values) / total if total and values else None

    sla = weighted("frt_sla_rate", "first_responses", responses)
    parts = [f"{resolutions:,} resolutions", f"FRT SLA {human('frt_sla_rate', sla)}",
             f"FCR {human('fcr_rate', weighted('fcr_rate', 'resolutions', resolutions))}",
             f"CSAT {human('csat_avg', weighted('csat_avg', 'surveys', surveys))}",
             f"{sum(r['complaints'] for r in rows)} complaint(s)"]
    return ", ".join(parts)
