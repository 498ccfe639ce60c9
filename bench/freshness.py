"""Freshness: with `servicescore run` up, events at a steady rate (default 1,000/s) for a while;
for sampled tickets, the seconds from producing the resolution to seeing it in the KPIs through
the HTTP API's /kpis (the reader `servicescore kpis` uses too).

The load is whole tickets (opened, first response, resolved: three events each) of made-up
engineers; about once a second a sampled ticket of its own engineer. A poller asks
/kpis?window=24h ten times a second and notes when each sampled engineer's resolution shows.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import urllib.request
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from servicescore.kafka.client import client_options
from tests.plugins.pipeline import Pipeline

TICK_S = 0.1
POLL_S = 0.1
WAIT_AFTER_S = 30


def ticket(engineer: str, now_ms: int) -> list[tuple[str, dict]]:
    tid = f"F-{uuid.uuid4().hex[:12]}"
    base = {"ticket_id": tid}
    return [
        ("ticket-opened", {**base, "event_id": f"{tid}-o", "occurred_at": now_ms - 60_000,
                           "customer_id": "C-bench", "channel": "phone", "priority": "P2",
                           "category": "bench"}),
        ("ticket-first-response", {**base, "event_id": f"{tid}-f", "occurred_at": now_ms - 30_000,
                                   "engineer_id": engineer}),
        ("ticket-resolved", {**base, "event_id": f"{tid}-r", "occurred_at": now_ms,
                             "engineer_id": engineer}),
    ]


def resolved(api: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{api}/kpis?window=24h", timeout=10) as response:
        rows = json.loads(response.read())
    return {r["engineer_id"]: r["resolutions"] for r in rows if r.get("engineer_id")}


async def produce_steady(p: Pipeline, rate: int, seconds: float, sent: dict[str, float]) -> int:
    """``rate`` events/s for ``seconds``; ``sent``: sampled engineer -> when its resolution
    was handed to the producer."""
    producer = AIOKafkaProducer(**client_options(p.settings), acks="all", linger_ms=5)
    await producer.start()
    per_tick, count, n, run = rate * TICK_S, 0, 0, uuid.uuid4().hex[:6]
    began = time.monotonic()
    try:
        tick = 0
        while time.monotonic() - began < seconds:
            tick += 1
            target = int(per_tick * tick)
            now_ms = int(time.time() * 1000)
            if tick % int(1 / TICK_S) == 1:  # one sampled ticket a second, first in its tick
                engineer = f"FRESH-{run}-{n}"
                n += 1
                for topic, event in ticket(engineer, now_ms):
                    await producer.send(p.settings.topic(topic), orjson.dumps(event),
                                        key=event["ticket_id"].encode())
                sent[engineer] = time.monotonic()
                count += 3
            while count < target:
                for topic, event in ticket(f"LOAD-{run}-{count % 50}", now_ms):
                    await producer.send(p.settings.topic(topic), orjson.dumps(event),
                                        key=event["ticket_id"].encode())
                count += 3
            await asyncio.sleep(max(0.0, began + tick * TICK_S - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def poll(api: str, sent: dict[str, float], seen: dict[str, float], stop: dict):
    while stop["at"] is None or len(seen) < len(sent):
        if stop["at"] is not None and time.monotonic() - stop["at"] > WAIT_AFTER_S:
            return
        counts = await asyncio.to_thread(resolved, api)
        now = time.monotonic()
        for engineer in sent:
            if engineer not in seen and counts.get(engineer, 0) >= 1:
                seen[engineer] = now
        await asyncio.sleep(POLL_S)


async def _measure(p: Pipeline, rate: int, seconds: float) -> dict:
    api = f"http://{p.env['SERVICESCORE_API']}"
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop: dict = {"at": None}
    poller = asyncio.create_task(poll(api, sent, seen, stop))
    began = time.monotonic()
    events = await produce_steady(p, rate, seconds, sent)
    produced_s = time.monotonic() - began
    stop["at"] = time.monotonic()
    await poller
    delays = sorted(seen[e] - sent[e] for e in seen)
    # (seconds into the run the resolution was sent, its delay): does the delay build up?
    series = sorted((round(sent[e] - began, 2), round(seen[e] - sent[e], 2)) for e in seen)
    return {"rate_target": rate, "events": events, "produce_s": produced_s,
            "rate_produced": events / produced_s, "samples": len(sent), "seen": len(seen),
            "via": "HTTP API /kpis?window=24h",
            "p50_s": quantile(delays, 0.50), "p95_s": quantile(delays, 0.95),
            "p99_s": quantile(delays, 0.99), "max_s": delays[-1] if delays else None,
            "mean_s": statistics.fmean(delays) if delays else None, "series": series}


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def measure(p: Pipeline, rate: int = 1000, seconds: float = 45) -> dict:
    """Row 4 on the running pipeline ``p``."""
    return asyncio.run(_measure(p, rate, seconds))
