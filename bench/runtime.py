"""The worker's pure steps on plain aiokafka: each step's cost, and a bound without Faust.

    .venv/bin/python -m bench.runtime --days 30 --engineers 60

On the same pre-produced event topics (a real local Kafka), in one process, one after another:

1. ``consume``: a bare aiokafka consumer reads every event (the ceiling);
2. ``+ route``: and routes each with the intake's pure step (parse, validate, re-key);
3. ``+ lifecycle``: and applies each ticket record to its ticket's state with the lifecycle's
   pure step, states held in a dict, decoded and encoded once per ticket per batch as the
   worker does, and the facts encoded as the worker sends them;
4. ``+ produce``: and produces those facts (500 per message) and one changelog record per
   ticket per batch with aiokafka, acknowledged (acks=all) per batch;
5. ``+ commit``: and, in a consumer group, commits each batch's offsets once its sends are
   acknowledged (at-least-once, as the worker does).

Step 5 is the work of `servicescore worker` without Faust (its consumer loop, agents, tables and
per-message producer bookkeeping), in one hop (no re-keying through a topic: one process owns
every partition here) and without recovery: an upper bound for a design on this runtime, not a
product. Each rate comes with its ratio to the
ceiling measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.events import EVENT_TOPICS
from servicescore.dev.simulate import simulate, write_jsonl
from servicescore.kafka.client import client_options
from streams import lifecycle, ticket
from streams.app import FactsCache
from streams.intake import route
from tests.plugins.kafka import local_kafka
from tests.plugins.pipeline import Pipeline

BATCH = 5000


async def consume(settings, total: int, handle, group: str | None = None) -> float:
    """Read ``total`` events in batches, each handed to ``handle``; with a ``group``, commit
    each batch's offsets once ``handle`` is done (after its sends are acknowledged)."""
    consumer = AIOKafkaConsumer(*(settings.topic(t) for t in EVENT_TOPICS),
                                **client_options(settings), group_id=group,
                                enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    started, seen = time.perf_counter(), 0
    try:
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            messages = [m for part in batch.values() for m in part]
            seen += len(messages)
            await handle(messages)
            if group is not None and batch:
                await consumer.commit({tp: ms[-1].offset + 1 for tp, ms in batch.items()})
    finally:
        await consumer.stop()
    return time.perf_counter() - started


class Worker:
    """The worker's pure steps over batches, without Faust."""

    def __init__(self, settings, steps: int, producer: AIOKafkaProducer | None = None):
        self.settings, self.steps, self.producer = settings, steps, producer
        self.calendar = settings.work_calendar()
        self.states: dict[str, bytes] = {}
        self.recent = FactsCache(10_000)
        self.facts = 0

    async def __call__(self, messages) -> None:
        prefix = len(self.settings.topic_prefix)
        by_ticket: dict[str, list[dict]] = defaultdict(list)
        for m in messages:
            routed = route(m.topic[prefix:], m.value, m.partition, m.offset, 0,
                           self.settings.timezone)
            if routed.target == "ticket":
                by_ticket[routed.key].append(routed.value)
        if self.steps < 3:
            return
        out, changed = [], {}
        for ticket_id, recs in by_ticket.items():
            state = ticket.decode(self.states.get(ticket_id), ticket_id)
            for rec in recs:
                rec.pop("src", None)
            # The worker's step per ticket and bundle (streams/app.py).
            steps = lifecycle.apply_many(state, recs, self.calendar, 0, self.recent.get(ticket_id))
            self.recent.put(ticket_id, steps.after)
            out.extend(steps.facts)
            changed[ticket_id] = self.states[ticket_id] = ticket.encode(state)
        self.facts += len(out)
        chunks = [orjson.dumps({"ts": 0, "facts": out[i:i + 500]})
                  for i in range(0, len(out), 500)]
        if self.steps < 4:
            return
        sends = [await self.producer.send("runtime-facts", chunk) for chunk in chunks]
        sends += [await self.producer.send("runtime-state", value, key=key.encode())
                  for key, value in changed.items()]
        await asyncio.gather(*sends)


async def measure(settings, total: int) -> dict[str, float]:
    seconds = {"consume": await bare_read(settings, total)}
    seconds["+ route"] = await consume(settings, total, Worker(settings, 2))
    seconds["+ lifecycle"] = await consume(settings, total, Worker(settings, 3))
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=10,
                                max_batch_size=512 * 1024, max_request_size=4 << 20)
    await producer.start()
    try:
        seconds["+ produce"] = await consume(settings, total, Worker(settings, 4, producer))
        seconds["+ commit"] = await consume(settings, total, Worker(settings, 4, producer),
                                            group=f"{settings.app_id}-runtime-bound")
    finally:
        await producer.stop()
    return seconds


async def _nothing(messages) -> None:
    return None


async def bare_read(settings, total: int) -> float:
    """Seconds for a bare consumer (no group) to read ``total`` events: the ceiling."""
    return await consume(settings, total, _nothing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--engineers", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssruntime-") as tmp:
        folder = Path(tmp)
        broker = local_kafka(folder / "kafka")
        bootstrap = broker.start()
        try:
            sim = simulate(date(2026, 6, 1), args.days, args.engineers, seed=1)
            write_jsonl(sim.records, folder / "events.jsonl")
            (folder / "p").mkdir()
            p = Pipeline(bootstrap, folder / "p")
            p.cli("topics", "create")
            p.cli("replay", str(folder / "events.jsonl"))
            total = len(sim.records)
            seconds = asyncio.run(measure(p.settings, total))
        finally:
            broker.stop()
    ceiling = seconds["consume"]
    print(f"{total:,} events ({args.days} days, {args.engineers} engineers), one process")
    for name, secs in seconds.items():
        print(f"{name:<12} {total / secs:>10,.0f} events/s  {ceiling / secs:6.3f} x ceiling  "
              f"({secs:.2f} s)")


if __name__ == "__main__":
    main()
