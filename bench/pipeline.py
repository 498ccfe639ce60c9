"""End-to-end throughput and event-to-KPI delay of `servicescore run` on simulated traffic.

    make bench            # or: .venv/bin/python -m bench.pipeline --days 30 --engineers 30

1. Publishes a month of simulated traffic to Kafka, then times a plain aiokafka consumer reading
   it (the baseline: the broker and client alone), then `servicescore run` processing it until
   every consumer group has committed everything. Reports events/s and the ratio to the baseline
   (the machine is shared and noisy: the ratio, measured in the same run, is what to compare).
2. With the service idle, publishes single tickets (opened, first response, resolved) and
   polls the HTTP API until the resolution shows in /kpis: the event-to-KPI delay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path

from bench import freshness
from bench.runtime import bare_read
from servicescore.dev.broker import LocalKafka
from servicescore.dev.simulate import simulate, write_jsonl, write_roster_csv
from tests.plugins.kafka import local_kafka
from tests.plugins.pipeline import Pipeline


def one_ticket(engineer: str) -> list[tuple[str, dict]]:
    """Opened, first response and resolved, ending now (bench/freshness.py's ticket)."""
    return freshness.ticket(engineer, int(datetime.now(UTC).timestamp() * 1000))


def resolutions_of(api: str, engineer: str) -> int:
    url = f"{api}/kpis?window=24h&engineer={engineer}"
    with urllib.request.urlopen(url, timeout=10) as response:
        rows = json.loads(response.read())
    return rows[0]["resolutions"] if rows else 0


def measure_delay(p: Pipeline, folder: Path, samples: int) -> list[float]:
    api = f"http://{p.env['SERVICESCORE_API']}"
    delays = []
    for n in range(samples):
        engineer = f"BENCH-E{n}"
        path = folder / f"delay{n}.jsonl"
        write_jsonl(one_ticket(engineer), path)
        p.cli("replay", str(path))  # returns once the broker acknowledged every event
        published = time.monotonic()
        while resolutions_of(api, engineer) < 1:
            if time.monotonic() - published > 60:
                raise SystemExit(f"no KPI after 60 s for {engineer}")
            time.sleep(0.05)
        delays.append(time.monotonic() - published)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--engineers", type=int, default=30)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssbench-") as tmp:
        folder = Path(tmp)
        broker: LocalKafka = local_kafka(folder / "kafka")
        bootstrap = broker.start()
        try:
            run(bootstrap, folder, args)
        finally:
            broker.stop()


def run(bootstrap: str, folder: Path, args) -> None:
    sim = simulate(date(2026, 11, 1), args.days, args.engineers, seed=1)
    total = len(sim.records)
    write_jsonl(sim.records, folder / "events.jsonl")
    write_roster_csv(sim.roster, folder / "roster.csv")
    (folder / "pipeline").mkdir()
    p = Pipeline(bootstrap, folder / "pipeline")
    p.cli("topics", "create")
    p.cli("roster", "import", str(folder / "roster.csv"))
    p.cli("replay", str(folder / "events.jsonl"))
    base_s = asyncio.run(bare_read(p.settings, total))
    started = time.monotonic()
    p.start("run")
    try:
        p.wait_idle(timeout=1800, settle=1)
        pipe_s = time.monotonic() - started
        delays = measure_delay(p, folder, args.samples)
    finally:
        p.stop_all()
    print(f"events: {total} ({args.days} days, {args.engineers} engineers)")
    print(f"baseline consumer: {total / base_s:,.0f} events/s ({base_s:.1f} s)")
    print(f"servicescore run:  {total / pipe_s:,.0f} events/s ({pipe_s:.1f} s, start-up "
          f"included) = {base_s / pipe_s:.3f} x baseline")
    print(f"event-to-KPI delay over {len(delays)} tickets: median "
          f"{statistics.median(delays):.2f} s, max {max(delays):.2f} s")


if __name__ == "__main__":
    main()
