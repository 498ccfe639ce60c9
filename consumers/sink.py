"""The ClickHouse sink: consume, add, flush, commit; one class owns the lifecycle.

A batch is flushed at ``batch_rows`` messages or ``batch_seconds`` after its first message,
whichever comes first. Offsets are committed only after the insert succeeded; while ClickHouse
is unreachable the partitions are paused and the same batch is retried with backoff. A batch
inserted twice (a crash between insert and commit) changes nothing: facts are upserts by
identity and version.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from consumers.batch import Batch
from consumers.clickhouse import ClickHouseWriter, SinkBackpressureError
from schemas.events import DLQ_TOPIC, ROSTER_TOPIC
from schemas.facts import FACT_TABLES
from servicescore.metrics import Metrics

log = logging.getLogger("servicescore.sink")
MAX_BACKOFF_S = 30.0


def to_facts(topic: str, value: bytes | None, timestamp_ms: int,
             key: bytes | None) -> list[dict] | None:
    """A sink message as fact rows, or None when it holds none (logged and skipped).

    A facts message is one fact, or ``{"ts": ..., "facts": [...]}``: everything one step of a
    stream processor emitted, in one message (one send instead of several)."""
    if topic == ROSTER_TOPIC:
        fact = roster_fact(value, timestamp_ms, key)
        return [fact] if fact else None
    try:
        data = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    if topic == DLQ_TOPIC:
        letter = {**data, "kind": "dead_letter", "v": 1, "del": 0}
        return [letter] if valid_fact(letter) else None
    items = data.get("facts", [data])
    if not isinstance(items, list) or not all(valid_fact(f) for f in items):
        return None
    if "ts" in data:
        for fact in items:
            fact.setdefault("ts", data["ts"])
    return items


def valid_fact(fact: object) -> bool:
    """A malformed fact would fail its whole batch's insert forever: refuse it up front."""
    if not isinstance(fact, dict) or fact.get("kind") not in FACT_TABLES:
        return False
    problem = FACT_TABLES[fact["kind"]].problem(fact)
    if problem:
        log.warning("not a valid %s fact: %s", fact["kind"], problem)
    return problem is None


def roster_fact(value: bytes | None, timestamp_ms: int, key: bytes | None) -> dict | None:
    """engineer-roster is compacted: a null value (tombstone) removes the engineer."""
    if value is None:
        return key and {"kind": "roster", "engineer_id": key.decode(), "v": timestamp_ms,
                        "del": 1}
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not data.get("engineer_id"):
        return None
    return {"kind": "roster", "engineer_id": str(data["engineer_id"]),
            "name": str(data.get("name") or ""), "role": str(data.get("role") or ""),
            "team_id": data.get("team_id") or None, "active": bool(data.get("active", True)),
            "updated_at": timestamp_ms, "v": timestamp_ms, "del": 0}


class Sink:
    def __init__(self, consumer_factory, writer: ClickHouseWriter, metrics: Metrics,
                 topics: dict[str, str], batch_rows: int = 1000, batch_seconds: float = 1.0):
        """``topics`` maps the real (prefixed) topic name to its logical name."""
        self.consumer_factory = consumer_factory
        self.writer = writer
        self.metrics = metrics
        self.topics = topics
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        consumer: AIOKafkaConsumer = self.consumer_factory(*self.topics)
        await consumer.start()
        try:
            batch = Batch()
            while not self.stopping.is_set():
                await self._poll(consumer, batch)
                if batch.messages >= self.batch_rows or (
                        batch.messages and batch.age() >= self.batch_seconds):
                    await self.flush(consumer, batch)
                    batch = Batch()
            if batch.messages:
                await self.flush(consumer, batch)
        finally:
            await consumer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        wait = self.batch_seconds - batch.age() if batch.messages else self.batch_seconds
        polled = await consumer.getmany(timeout_ms=max(1, int(wait * 1000)),
                                        max_records=self.batch_rows - batch.messages)
        for tp, messages in polled.items():
            logical = self.topics[tp.topic]
            for m in messages:
                facts = to_facts(logical, m.value, m.timestamp, m.key)
                if facts is None:
                    log.warning("skipped a message that is not a fact: %s[%d]@%d",
                                tp.topic, tp.partition, m.offset)
                batch.add(facts or [], tp.topic, tp.partition, m.offset)

    async def flush(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        """Insert until it succeeds, then commit the batch's offsets."""
        delay = 0.25
        while True:
            started = time.monotonic()
            try:
                written = await asyncio.to_thread(self.writer.write, batch)
                break
            except SinkBackpressureError as exc:
                self.metrics.sink_failures.inc()
                log.warning("ClickHouse unavailable, retrying in %.1fs: %s", delay, exc.reason)
                consumer.pause(*consumer.assignment())
                # Polling paused partitions returns nothing but keeps the member in its group.
                await consumer.getmany(timeout_ms=int(delay * 1000))
                delay = min(delay * 2, MAX_BACKOFF_S)
                if self.stopping.is_set() and delay >= MAX_BACKOFF_S:
                    raise
        consumer.resume(*consumer.assignment())
        self._observe(batch, written, time.monotonic() - started)
        offsets = {TopicPartition(t, p): last + 1 for (t, p), (_, last) in batch.offsets.items()}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions away: their new owner re-reads and re-inserts,
            # which the upsert tables absorb.
            log.warning("offset commit failed, the batch will be re-read: %s", exc)

    def _observe(self, batch: Batch, written: dict[str, int], seconds: float) -> None:
        m = self.metrics
        for table, n in written.items():
            m.sink_rows.labels(table).inc(n)
        m.sink_batches.inc()
        m.sink_insert_seconds.observe(seconds)
        now = time.time()
        m.kpi_freshness_seconds.set(now)
        if batch.oldest_emit_ms is not None:
            m.event_lag_seconds.observe(max(0.0, now - batch.oldest_emit_ms / 1000))
