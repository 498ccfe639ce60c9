"""The bench's traffic: simulated events pre-produced fast (kcat, not timed), synthetic opened
tickets, and the ceiling row (a bare aiokafka consumer reading the same topics)."""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import orjson

from servicescore.dev.simulate import simulate, write_roster_csv
from tests.plugins.pipeline import Pipeline

EVENTS_PER_ENGINEER_DAY = 23.5  # the simulator makes about 24 (30 days): a little over
START = date(2026, 11, 1)


def simulated(events: int, days: int = 30, seed: int = 1):
    """About ``events`` simulated events over ``days`` (engineers chosen to reach it): the
    traffic, and the number of engineers it took."""
    engineers = max(1, math.ceil(events / (days * EVENTS_PER_ENGINEER_DAY)))
    while True:
        sim = simulate(START, days, engineers, seed=seed)
        if len(sim.records) >= events:
            return sim, engineers
        engineers = int(engineers * events / len(sim.records)) + 1


def opened_tickets(n: int) -> list[tuple[str, dict]]:
    """``n`` ticket-opened events of distinct tickets, in the last hour (they stay open)."""
    now = int(time.time() * 1000)
    return [("ticket-opened", {
        "event_id": f"mem-{i}", "occurred_at": now - 3_600_000 + i * 3_600_000 // n,
        "ticket_id": f"MEM-{i:08d}", "customer_id": f"C{i % 50_000}", "channel": "phone",
        "priority": "P3", "category": "network"}) for i in range(n)]


def key_of(event: dict) -> bytes:
    key = event.get("ticket_id") or event.get("engineer_id") or ""
    return key.encode()


def produce(p: Pipeline, records: list[tuple[str, dict]], folder: Path) -> float:
    """Every (topic, event) to ``p``'s topics, keyed as `servicescore replay` keys them (and
    partitioned as Java clients do: murmur2), with kcat; returns the seconds it took."""
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat is None:
        raise SystemExit("kcat is missing: `make ops-tools` (or apt-get install kcat)")
    by_topic: dict[str, list[bytes]] = defaultdict(list)
    for topic, event in records:
        by_topic[topic].append(key_of(event) + b"\t" + orjson.dumps(event))
    began = time.monotonic()
    for topic, lines in by_topic.items():
        path = folder / f"produce-{topic}.txt"
        path.write_bytes(b"\n".join(lines) + b"\n")
        subprocess.run([kcat, "-P", "-b", p.settings.kafka_bootstrap, "-t", p.settings.topic(topic),
                        "-K", "\t", "-l", "-X", "partitioner=murmur2_random",
                        "-X", "linger.ms=20", "-X", "batch.num.messages=10000",
                        "-X", "queue.buffering.max.messages=1000000", str(path)],
                       check=True, timeout=900)
        path.unlink()
    return time.monotonic() - began


def prepare(p: Pipeline, sim, folder: Path, records=None) -> float:
    """Topics, roster and events of ``sim`` (or ``records``) in ``p``'s Kafka."""
    p.cli("topics", "create")
    if sim is not None:
        write_roster_csv(sim.roster, folder / "roster.csv")
        p.cli("roster", "import", str(folder / "roster.csv"))
    return produce(p, records if records is not None else sim.records, folder)


def ceiling(p: Pipeline, total: int) -> dict:
    """Row 1: the bare consumer's rate on ``p``'s pre-produced events (best of 2)."""
    from bench.runtime import bare_read  # the same consumer as the hop-cost row's first step

    seconds = min(asyncio.run(bare_read(p.settings, total)) for _ in range(2))
    return {"events": total, "seconds": seconds, "rate": total / seconds}
