"""The ClickHouse sink: consume, add, flush, commit; one class owns the lifecycle.

A batch is flushed at ``batch_rows`` messages or ``batch_seconds`` after its first message,
whichever comes first. Flushing inserts the facts, sends the dead letters of the messages
refused (unreadable, invalid, or rows ClickHouse would not take) and waits for the broker to
have them, and only then commits the offsets: no offset passes a message whose outcome is not
written. A batch inserted twice (a crash between insert and commit) changes nothing: facts are
upserts by identity and version.

While ClickHouse (or the broker, for dead letters) is unavailable the sink retries the same
batch with backoff and does not poll meanwhile, so nothing fetched is thrown away; its
partitions stay paused, also those a rebalance assigns during the outage. A rebalance takes
the revoked partitions' messages out of the held batch: their new owner reads them again, and
offsets are only committed for partitions still owned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError

from consumers.batch import Batch, Source
from consumers.clickhouse import ClickHouseWriter, SinkBackpressureError, Written, first_line
from consumers.deadletters import DeadLetterProducer
from consumers.message import Refusal, to_facts
from schemas.deadletter import dead_letter
from servicescore.core.metrics import Metrics

log = logging.getLogger("servicescore.sink")
MAX_BACKOFF_S = 30.0


class Sink:
    def __init__(self, consumer_factory: Callable[[], AIOKafkaConsumer],
                 writer: ClickHouseWriter, metrics: Metrics, topics: dict[str, str],
                 dead_letters: DeadLetterProducer, batch_rows: int = 1000,
                 batch_seconds: float = 1.0):
        """``consumer_factory()`` makes an unsubscribed consumer (the sink subscribes it with
        its rebalance listener); ``topics`` maps the real (prefixed) topic name to its logical
        name."""
        self.consumer_factory = consumer_factory
        self.writer = writer
        self.metrics = metrics
        self.topics = topics
        self.dead_letters = dead_letters
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.stopping = asyncio.Event()
        self.batch = Batch()
        self.last_commit_at: float | None = None  # time.monotonic(), for /health
        self.failing_since: float | None = None  # time.monotonic(); None while healthy

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        consumer = self.consumer_factory()
        consumer.subscribe(list(self.topics), listener=_Rebalance(self, consumer))
        try:
            await self.dead_letters.start()
            await consumer.start()
            try:
                await self._consume(consumer)
            finally:
                await consumer.stop()
        finally:
            await self.dead_letters.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self.stopping.is_set():
            await self._poll(consumer)
            if self.batch.messages >= self.batch_rows or (
                    self.batch.messages and self.batch.age() >= self.batch_seconds):
                await self.flush(consumer)
        if self.batch.messages:
            await self.flush(consumer)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        batch = self.batch
        wait = self.batch_seconds - batch.age() if batch.messages else self.batch_seconds
        polled = await consumer.getmany(timeout_ms=max(1, int(wait * 1000)),
                                        max_records=self.batch_rows - batch.messages)
        for tp, messages in polled.items():
            logical = self.topics[tp.topic]
            for m in messages:
                source = Source(tp.topic, tp.partition, m.offset, m.value)
                outcome = _outcome(logical, m.value, m.timestamp, m.key)
                if isinstance(outcome, Refusal):
                    self.batch.refuse(source, outcome)
                else:
                    self.batch.add(source, outcome)

    async def flush(self, consumer: AIOKafkaConsumer) -> None:
        """Insert, dead-letter, commit. Stopped while failing: the batch stays uncommitted and
        the group reads it again."""
        if await self._deliver(consumer):
            await self._commit(consumer)
            self.batch = Batch()
        elif not self.batch.messages:
            self._restart(consumer)

    async def _deliver(self, consumer: AIOKafkaConsumer) -> bool:
        """Insert, then send the dead letters; False when stopped while failing or when a
        rebalance took the batch meanwhile."""
        started = time.monotonic()
        written = await self._retrying(consumer, "insert", self._write)
        if written is None:
            return False
        self._observe(written, time.monotonic() - started)
        letters = self._letters(consumer, written)
        return not letters or await self._retrying(consumer, "dead-letter send",
                                                   lambda: self._send(letters)) is not None

    def _restart(self, consumer: AIOKafkaConsumer) -> None:
        """A rebalance took the whole held batch: read again from the committed offsets (still
        failing until an insert succeeds, but only polling finds the records to insert)."""
        self.batch = Batch()
        consumer.resume(*consumer.assignment())

    async def _write(self) -> Written:
        return await asyncio.to_thread(self.writer.write, self.batch)

    async def _retrying(self, consumer: AIOKafkaConsumer, what: str,
                        attempt: Callable[[], Awaitable]):
        """``attempt()`` until it succeeds (its result); None when stopped meanwhile or when
        a rebalance left nothing of the batch."""
        delay = 0.25
        while self.batch.messages:  # a rebalance may take the batch away meanwhile
            try:
                result = await attempt()
            except (SinkBackpressureError, KafkaError) as exc:
                self._failing(consumer, what, exc, delay)
            else:
                self._recovered(consumer)
                return result
            if await self._stopped_within(delay):
                log.warning("stopped while the %s failed: the batch is left uncommitted", what)
                return None
            delay = min(delay * 2, MAX_BACKOFF_S)
        return None

    def _failing(self, consumer: AIOKafkaConsumer, what: str, exc: Exception,
                 delay: float) -> None:
        if what == "insert":
            self.metrics.sink_failures.inc()
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        # Not polling during the backoff already keeps records from being fetched and lost;
        # paused, the fetcher also stops prefetching for them.
        consumer.pause(*consumer.assignment())
        reason = exc.reason if isinstance(exc, SinkBackpressureError) else first_line(exc)
        log.warning("%s failed, retrying in %.2fs: %s", what, delay, reason)

    def _recovered(self, consumer: AIOKafkaConsumer) -> None:
        if self.failing_since is not None:
            self.failing_since = None
            consumer.resume(*consumer.assignment())

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _letters(self, consumer: AIOKafkaConsumer, written: Written) -> list[tuple[str, dict]]:
        """(reason kind, dead letter) per refused message of a partition still owned."""
        refused = [*self.batch.refused,
                   *((s, Refusal("refused", reason)) for s, reason in written.refused)]
        owned, now_ms, letters, seen = consumer.assignment(), int(time.time() * 1000), [], set()
        for source, refusal in refused:
            if source.tp in owned and source not in seen:  # one letter per message
                seen.add(source)
                letters.append((refusal.kind, dead_letter(
                    self.topics[source.topic], source.partition, source.offset, source.raw,
                    refusal.reason, now_ms)))
        return letters

    async def _send(self, letters: list[tuple[str, dict]]) -> bool:
        await self.dead_letters.send([letter for _, letter in letters])
        for kind, letter in letters:
            self.metrics.dead_letters.labels(letter["topic"], "sink", kind).inc()
        first = letters[0][1]
        log.warning("dead-lettered %d message(s); first %s[%d]@%d: %s", len(letters),
                    first["topic"], first["partition"], first["offset"], first["reason"])
        return True

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        owned = consumer.assignment()
        offsets = {tp: n for tp, n in self.batch.offsets().items() if tp in owned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions away: their new owner re-reads and re-inserts,
            # which the upsert tables absorb.
            log.warning("offset commit failed, the batch will be re-read: %s", exc)
            return
        self.last_commit_at = time.monotonic()

    def _observe(self, written: Written, seconds: float) -> None:
        m = self.metrics
        for table, n in written.rows.items():
            m.sink_rows.labels(table).inc(n)
        m.sink_batches.inc()
        m.sink_insert_seconds.observe(seconds)
        now = time.time()
        m.kpi_freshness_seconds.set(now)
        oldest = self.batch.oldest_emit_ms()
        if oldest is not None:
            m.event_lag_seconds.observe(max(0.0, now - oldest / 1000))


class SinkGroup:
    """Sinks of one consumer group in one process, sharing its storage: the group splits the
    partitions between them as between sink processes. One failing stops the others."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks

    def stop(self) -> None:
        for sink in self.sinks:
            sink.stop()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for sink in self.sinks:
                group.create_task(sink.run())

    @property
    def last_commit_at(self) -> float | None:
        """The latest commit of any of them (/health: is the group making progress)."""
        return max((s.last_commit_at for s in self.sinks if s.last_commit_at is not None),
                   default=None)

    @property
    def failing_since(self) -> float | None:
        return min((s.failing_since for s in self.sinks if s.failing_since is not None),
                   default=None)


def _outcome(topic: str, value: bytes | None, timestamp_ms: int,
             key: bytes | None) -> list[dict] | Refusal:
    try:
        return to_facts(topic, value, timestamp_ms, key)
    except Exception as exc:  # noqa: BLE001 - a decoding bug must not crash-loop on one message
        return Refusal("invalid", f"unexpected: {first_line(exc)}")


class _Rebalance(ConsumerRebalanceListener):
    """Keeps the held batch to the partitions owned, and new partitions paused while failing."""

    def __init__(self, sink: Sink, consumer: AIOKafkaConsumer):
        self.sink, self.consumer = sink, consumer

    async def on_partitions_revoked(self, revoked) -> None:
        self.sink.batch.drop(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        if self.sink.failing_since is not None:
            self.consumer.pause(*assigned)
