"""The benchmark of issue 9: one run on a real local Kafka (started here) and the embedded
ClickHouse engine; prints a table and writes it as JSON (bench/results/latest.json).

    make bench                                  # = .venv/bin/python -m bench
    .venv/bin/python -m bench --quick           # small sizes, a few minutes
    .venv/bin/python -m bench --only ceiling,peer
    .venv/bin/python -m bench --quick --only freshness --size fresh_s=45 --out /tmp/f.json
    .venv/bin/python -m bench --show bench/results/latest.json

Rows: ceiling, peer, e2e, freshness, split, query, close, memory, workers2, runtime (README.md).
The JSON is rewritten after every row, so a cut-off run keeps what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import report

ROWS = ("ceiling", "peer", "e2e", "freshness", "split", "query", "close", "memory", "workers2",
        "runtime")
KAFKA_ROWS = {"ceiling", "peer", "e2e", "freshness", "split", "memory", "workers2", "runtime"}
MAIN_TRAFFIC = {"ceiling", "peer", "e2e", "freshness", "runtime"}
REPO = Path(__file__).resolve().parents[1]
LATEST = REPO / "bench" / "results" / "latest.json"

FULL = {"events": 1_000_000, "days": 30, "workers2_events": 300_000, "open_tickets": 1_000_000,
        "fresh_rate": 1000, "fresh_s": 45, "query_facts": 10_000_000, "close_engineers": 1000}
QUICK = {"events": 30_000, "days": 30, "workers2_events": 20_000, "open_tickets": 30_000,
         "fresh_rate": 1000, "fresh_s": 10, "query_facts": 300_000, "close_engineers": 100}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"cores": os.cpu_count(), "cpu": model, "memory_gb": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "load_at_start": os.getloadavg()}


class Run:
    """The results being gathered; saved after each row."""

    def __init__(self, out: Path, sizes: dict, quick: bool):
        self.out = out
        self.data = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                     "commit": git("rev-parse", "HEAD"),
                     "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
                     "quick": quick, "machine": machine(), "sizes": sizes,
                     "rows": {}, "errors": {}}

    def row(self, name: str, measure) -> dict | None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {name} ...", flush=True)
        began = time.monotonic()
        try:
            result = measure()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - one row failing, not the run
            traceback.print_exc()
            self.data["errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
            result = None
        else:
            self.data["rows"][name] = result
        print(f"[{datetime.now(UTC):%H:%M:%S}] {name} done in {time.monotonic() - began:.0f} s",
              flush=True)
        self.save()
        return result

    def save(self) -> None:
        self.data["table"] = [dict(zip(report.HEADER, r, strict=True))
                              for r in report.lines(self.data)]
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.data, indent=1, default=str) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        metavar="NAME[,NAME]", help=f"only these rows: {', '.join(ROWS)}")
    parser.add_argument("--show", type=Path, metavar="FILE.json",
                        help="print the table of a saved run; runs nothing")
    parser.add_argument("--size", action="append", default=[], metavar="NAME=N",
                        help=f"override a size: {', '.join(FULL)}")
    parser.add_argument("--out", type=Path, default=LATEST, help=f"default {LATEST}")
    args = parser.parse_args()
    if args.show:
        report.show(json.loads(args.show.read_text()))
        return
    wanted = args.only or list(ROWS)
    unknown = sorted(set(wanted) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    sizes = dict(QUICK if args.quick else FULL)
    for item in args.size:
        name, _, value = item.partition("=")
        if name not in sizes or not value.isdigit():
            parser.error(f"--size {item}: give NAME=N with NAME one of {', '.join(FULL)}")
        sizes[name] = int(value)
    run = Run(args.out, sizes, args.quick)
    with tempfile.TemporaryDirectory(prefix="ssbench-") as tmp:
        measure_all(run, set(wanted), sizes, Path(tmp))
    run.data["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    run.save()
    report.show(run.data)
    print(f"written: {args.out}")


def measure_all(run: Run, wanted: set[str], sizes: dict, folder: Path) -> None:
    if wanted & KAFKA_ROWS:
        from tests.plugins.kafka import local_kafka

        broker = local_kafka(folder / "kafka")
        bootstrap = broker.start(timeout=120)
        try:
            kafka_rows(run, wanted, sizes, folder, bootstrap,
                       int(broker.pid_file.read_text().split()[0]))
        finally:
            broker.stop()
    if "query" in wanted:
        from bench import query

        run.row("query", lambda: query.measure(sizes["query_facts"], folder / "query"))
    if "close" in wanted:
        from bench import close

        run.row("close", lambda: close.measure(sizes["close_engineers"]))


def pipeline(bootstrap: str, folder: Path, name: str):
    from tests.plugins.pipeline import Pipeline

    (folder / name).mkdir()
    return Pipeline(bootstrap, folder / name)


def kafka_rows(run: Run, wanted: set[str], sizes: dict, folder: Path, bootstrap: str,
               broker_pid: int) -> None:
    from bench import e2e, freshness, peer, traffic

    sim = None
    if wanted & (MAIN_TRAFFIC | {"split", "workers2"}):
        sim, engineers = traffic.simulated(sizes["events"], sizes["days"])
        sizes.update(engineers=engineers, events=len(sim.records))
        print(f"traffic: {len(sim.records):,} events, {sizes['days']} days, {engineers} "
              f"engineers", flush=True)
    if wanted & MAIN_TRAFFIC:
        p = pipeline(bootstrap, folder, "main")
        total = len(sim.records)
        sizes["produce_s"] = traffic.prepare(p, sim, folder)
        run.row("ceiling", lambda: traffic.ceiling(p, total))
        if "runtime" in wanted:
            run.row("runtime", lambda: runtime_row(p, total))
        if "peer" in wanted:
            run.row("peer", lambda: peer.measure(bootstrap, peer.event_topics(p.settings), total,
                                                 folder / "clickhouse"))
        try:
            if "e2e" in wanted:
                run.row("e2e", lambda: e2e.end_to_end(p, total, broker_pid))
            elif "freshness" in wanted:
                e2e.end_to_end(p, total)  # up and caught up first
            if "freshness" in wanted and "run" in p.processes:
                run.row("freshness", lambda: freshness.measure(p, sizes["fresh_rate"],
                                                               sizes["fresh_s"]))
        finally:
            p.stop_all()
    if "split" in wanted:
        p4 = pipeline(bootstrap, folder, "split")
        traffic.prepare(p4, sim, folder)
        run.row("split", lambda: e2e.split(p4, len(sim.records), broker_pid))
    if "workers2" in wanted:
        records = sim.records[:sizes["workers2_events"]]
        p2 = pipeline(bootstrap, folder, "workers2")
        traffic.prepare(p2, sim, folder, records)

        def two():
            own = traffic.ceiling(p2, len(records))
            return {**e2e.two_workers(p2, len(records)), "ceiling": own}
        run.row("workers2", two)
    if "memory" in wanted:
        p3 = pipeline(bootstrap, folder, "memory")
        opened = traffic.opened_tickets(sizes["open_tickets"])
        traffic.prepare(p3, None, folder, opened)
        del opened
        run.row("memory", lambda: e2e.memory(p3, sizes["open_tickets"]))


def runtime_row(p, total: int) -> dict:
    """Row 9: bench/runtime.py's steps on the same topics."""
    from bench import runtime

    seconds = asyncio.run(runtime.measure(p.settings, total))
    return {"events": total, "seconds": seconds,
            "rate": {step: total / s for step, s in seconds.items()}}


if __name__ == "__main__":
    main()
