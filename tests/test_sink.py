"""The ClickHouse sink (consumers/sink.py) against the session's real Kafka and an embedded
ClickHouse database: rows arrive in bounded batches, offsets are committed only after the insert,
an outage loses and doubles nothing, and a replay changes no KPI.

Writers that refuse or record are small wrappers around the real ``ClickHouseWriter``: the data
always goes to the real storage.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from contextlib import asynccontextmanager

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    IllegalStateError,
    KafkaConnectionError,
)

from consumers.clickhouse import ClickHouseWriter, SinkBackpressureError, Written
from consumers.deadletters import DeadLetterProducer
from consumers.sink import Sink
from schemas.events import ROSTER_TOPIC
from schemas.facts import FACT_TABLES, FACTS_TOPIC
from servicescore.core.metrics import Metrics
from servicescore.queries import kpis
from tests.plugins.kafka import create_topic, delete_topics

TIMEOUT_S = 30
BASE = 1_793_548_800_000  # 2026-11-02 00:00 +08:00
TABLES = ("tickets", "resolutions", "surveys", "escalations")


# ---------------------------------------------------------------------------------------------
# Facts, as the stream processors emit them
# ---------------------------------------------------------------------------------------------

def resolution(ticket_id: str, episode: int = 1, v: int = 1, engineer: str = "E1",
               **more) -> dict:
    return {"kind": "resolution", "ticket_id": ticket_id, "episode": episode,
            "engineer_id": engineer, "resolved_at": BASE + 3_600_000,
            "episode_start": BASE, "aht_s": 3600.0, "aht_bh_s": 3600.0, "escalated": False,
            "fcr": True, "reopened_7d": False, "reopened_30d": False, "customer_id": "C1",
            "category": "printer", "priority": "P2", "v": v, "del": 0,
            "ts": int(time.time() * 1000), **more}


def ticket_row(ticket_id: str, v: int = 1, responder: str = "E1", **more) -> dict:
    return {"kind": "ticket", "ticket_id": ticket_id, "customer_id": "C1",
            "category": "printer", "priority": "P2", "channel": "phone", "team_id": "team-a",
            "assignee_id": None, "requires_onsite": False, "opened_at": BASE, "status": "open",
            "episodes": 1, "episode_start": BASE, "owner_id": responder, "escalations": 0,
            "first_response_at": BASE + 60_000, "first_responder_id": responder,
            "frt_s": 60.0, "frt_bh_s": 0.0, "onsite_at": None, "onsite_engineer_id": None,
            "onsite_s": None, "onsite_bh_s": None, "v": v, "del": 0, **more}


def survey(event_id: str, ticket_id: str, v: int = 1, engineer: str = "E1", csat: int = 5,
           nps: int | None = 9) -> dict:
    return {"kind": "survey", "event_id": event_id, "ticket_id": ticket_id,
            "submitted_at": BASE + 7_200_000, "engineer_id": engineer,
            "credited_by": "resolution", "csat": csat, "nps": nps, "v": v, "del": 0}


def escalation(event_id: str, ticket_id: str, v: int = 1, engineer: str = "E1") -> dict:
    return {"kind": "escalation", "event_id": event_id, "ticket_id": ticket_id,
            "engineer_id": engineer, "to_engineer_id": "E3", "escalated_at": BASE + 120_000,
            "episode": 1, "v": v, "del": 0}


def tombstone(kind: str, v: int, **key) -> dict:
    return {"kind": kind, **key, "v": v, "del": 1}


def distinct_identities(facts: list[dict]) -> dict[str, int]:
    """Rows per table under FINAL: the identities whose highest version is not a tombstone."""
    latest: dict[tuple, dict] = {}
    for fact in facts:
        table = FACT_TABLES[fact["kind"]]
        key = (table.table, table.identity(fact))
        if key not in latest or fact["v"] >= latest[key]["v"]:
            latest[key] = fact
    counts: dict[str, int] = {}
    for (table, _), fact in latest.items():
        counts[table] = counts.get(table, 0) + (0 if fact["del"] else 1)
    return counts


# ---------------------------------------------------------------------------------------------
# Kafka and storage helpers
# ---------------------------------------------------------------------------------------------

async def produce(bootstrap: str, topic: str, values: list) -> None:
    """Send dicts (as JSON), bytes or None (a null value), in order, and wait for all acks."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = []
        for i, value in enumerate(values):
            raw = orjson.dumps(value) if isinstance(value, dict) else value
            sent.append(await producer.send(topic, raw, key=f"k{i % 7}".encode()))
        await producer.flush()
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> int | None:
    """The group's committed offset on the (one-partition) topic; None when nothing is."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:  # a fresh broker creates its offsets topic on the first group's request
            try:
                offsets = await admin.list_consumer_group_offsets(group)
                break
            except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    found = [o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset >= 0]
    return sum(found) if found else None


async def end_offset(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


async def produce_keyed(bootstrap: str, topic: str, records: list[tuple]) -> None:
    """Send (key, value[, partition]) records: value a dict (as JSON), bytes or None."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = []
        for key, value, *partition in records:
            raw = orjson.dumps(value) if isinstance(value, dict) else value
            sent.append(await producer.send(topic, raw, key=None if key is None else key.encode(),
                                            partition=partition[0] if partition else None))
        await producer.flush()
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) of a one-partition topic, from the start to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end, found = (await consumer.end_offsets([tp]))[tp], []
        while await consumer.position(tp) < end:
            for m in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                found.append((m.key, m.value))
        return found
    finally:
        await consumer.stop()


async def rows(storage, sql: str) -> list[dict]:
    return await asyncio.to_thread(storage.rows, sql)


async def count(storage, table: str, final: bool = False) -> int:
    (row,) = await rows(storage, f"SELECT count() AS n FROM {table}{' FINAL' if final else ''}")
    return row["n"]


async def counts(storage, final: bool = True) -> dict[str, int]:
    return {t: await count(storage, t, final) for t in TABLES}


def metric(metrics: Metrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels or None) or 0.0


# ---------------------------------------------------------------------------------------------
# Writers around the real one
# ---------------------------------------------------------------------------------------------

class RecordingWriter:
    """The real writer, noting every batch it is handed and the rows of each success."""

    def __init__(self, writer: ClickHouseWriter):
        self.writer = writer
        self.batch_sizes: list[int] = []  # messages per batch handed to write()
        self.written: list[dict[str, int]] = []  # rows per table of each successful write

    def write(self, batch) -> Written:
        self.batch_sizes.append(batch.messages)
        done = self.writer.write(batch)
        self.written.append(done.rows)
        return done

    def rows_written(self, table: str) -> int:
        return sum(w.get(table, 0) for w in self.written)


class OutageWriter(RecordingWriter):
    """ClickHouse unreachable while ``down`` is set (the storage itself stays intact)."""

    def __init__(self, writer: ClickHouseWriter):
        super().__init__(writer)
        self.down = threading.Event()
        self.refused = 0

    def write(self, batch) -> Written:
        if self.down.is_set():
            self.refused += 1
            raise SinkBackpressureError("test: ClickHouse is unreachable")
        return super().write(batch)


class LostReplyWriter(RecordingWriter):
    """The first insert reaches ClickHouse but its reply is lost: the sink sees a failure."""

    def __init__(self, writer: ClickHouseWriter):
        super().__init__(writer)
        self.lost = 0

    def write(self, batch) -> Written:
        done = super().write(batch)
        if self.lost == 0:
            self.lost += 1
            raise SinkBackpressureError("test: connection reset after the insert")
        return done


# ---------------------------------------------------------------------------------------------
# A sink like service.make_sink's, on the test's own topic and group
# ---------------------------------------------------------------------------------------------

class SinkRun:
    def __init__(self, bootstrap: str, topic: str, writer, batch_rows: int = 1000,
                 batch_seconds: float = 0.3, group: str | None = None,
                 logical: str = FACTS_TOPIC, dead_letters=None):
        self.bootstrap, self.topic = bootstrap, topic
        # A new group reads from the start; sinks sharing one split its partitions.
        self.group = group or f"sink-test-{uuid.uuid4().hex[:10]}"
        self.dlq = f"{topic}-dlq"
        self.metrics = Metrics()
        self.consumers: list[AIOKafkaConsumer] = []
        self.sink = Sink(self._consumer, writer, self.metrics, {topic: logical},
                         dead_letters or DeadLetterProducer(self._producer, self.dlq),
                         batch_rows, batch_seconds)
        self.task: asyncio.Task | None = None

    def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=self.sink.batch_rows, max_poll_interval_ms=600_000,
            heartbeat_interval_ms=300)  # a member joining or leaving is noticed quickly
        self.consumers.append(consumer)
        return consumer

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)

    def alive(self) -> None:
        """Fail at once, with the sink's own error, when it stopped by itself."""
        if self.task is not None and self.task.done():
            error = self.task.exception() if not self.task.cancelled() else "cancelled"
            raise AssertionError(f"the sink stopped by itself: {error!r}")

    def assigned(self) -> set[int]:
        """The partitions of the test's topic this sink owns now."""
        return {tp.partition for c in self.consumers[-1:] for tp in c.assignment()
                if tp.topic == self.topic}

    async def committed(self) -> int | None:
        return await committed(self.bootstrap, self.group, self.topic)

    async def wait_committed(self, offset: int) -> None:
        """Wait until the group's committed offsets add up to the topic's end, ``offset``."""
        end = await end_offset(self.bootstrap, self.topic)
        assert end == offset, f"{self.topic} ends at {end}, the test produced up to {offset}"
        await wait_until(self, self.committed, lambda n: n == offset,
                         f"group {self.group} committed the end offset {offset} of {self.topic}")

    async def letters(self) -> list[dict]:
        """The dead letters this sink wrote, in order."""
        return [orjson.loads(v) for _, v in await read_all(self.bootstrap, self.dlq)]

    async def stop(self) -> float:
        """Stop the sink and wait for its end; returns how long that took."""
        started = time.monotonic()
        self.sink.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), TIMEOUT_S)
        except TimeoutError:
            self.task.cancel()
            raise AssertionError(f"the sink did not stop within {TIMEOUT_S}s") from None
        return time.monotonic() - started


@asynccontextmanager
async def running(bootstrap: str, topic: str, writer, **options):
    run = SinkRun(bootstrap, topic, writer, **options)
    await create_topic(bootstrap, run.dlq, 1)
    run.task = asyncio.create_task(run.sink.run())
    try:
        yield run
    finally:
        if not run.task.done():
            await run.stop()
        await delete_topics(bootstrap, [run.dlq])


async def wait_until(run: SinkRun | None, probe, ok, what: str, timeout: float = TIMEOUT_S):
    """Poll ``await probe()`` until ``ok(value)``; a clear failure on timeout or sink death."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        if run is not None:
            run.alive()
        value = await probe()
        if ok(value):
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what} (last seen: {value!r})")


# ---------------------------------------------------------------------------------------------
# (a) batching
# ---------------------------------------------------------------------------------------------

def mixed_facts(n: int) -> list[dict]:
    makers = (lambda i: resolution(f"T{i}"), lambda i: survey(f"S{i}", f"T{i}"),
              lambda i: escalation(f"X{i}", f"T{i}"), lambda i: ticket_row(f"T{i}"))
    return [makers[i % len(makers)](i) for i in range(n)]


def test_2500_messages_go_in_batches_of_at_most_batch_rows(kafka_bootstrap, topic_factory,
                                                           storage):
    topic = topic_factory(prefix="facts")
    facts = mixed_facts(2500)
    writer = RecordingWriter(ClickHouseWriter(storage))

    async def scenario():
        await produce(kafka_bootstrap, topic, facts)
        async with running(kafka_bootstrap, topic, writer, batch_rows=400) as run:
            await run.wait_committed(2500)
            return run, await counts(storage)

    run, final = asyncio.run(scenario())

    assert sum(writer.batch_sizes) == 2500, writer.batch_sizes
    assert max(writer.batch_sizes) <= 400, f"a batch exceeded batch_rows: {writer.batch_sizes}"
    assert len(writer.batch_sizes) >= 7  # ceil(2500 / 400)
    assert metric(run.metrics, "servicescore_sink_batches_total") == len(writer.batch_sizes)
    assert {t: n for t, n in final.items() if n} == distinct_identities(facts)
    assert metric(run.metrics, "servicescore_sink_rows_total", table="resolutions") == 625


# ---------------------------------------------------------------------------------------------
# (b) ClickHouse unreachable for a while
# ---------------------------------------------------------------------------------------------

def test_nothing_is_committed_while_clickhouse_is_down_and_nothing_lost_or_doubled(
        kafka_bootstrap, topic_factory, storage):
    topic = topic_factory(prefix="facts")
    first = [resolution(f"T{i}") for i in range(300)]
    newer = [resolution(f"T{i}", v=2, engineer="E2") for i in range(50)]
    during = [resolution(f"T{i}") for i in range(300, 350)]
    writer = OutageWriter(ClickHouseWriter(storage))
    writer.down.set()

    async def refused() -> int:
        return writer.refused

    async def scenario():
        await produce(kafka_bootstrap, topic, first + newer)
        async with running(kafka_bootstrap, topic, writer) as run:
            await wait_until(run, refused, lambda n: n >= 3,
                             "the sink retried the refused insert three times")
            await produce(kafka_bootstrap, topic, during)
            await asyncio.sleep(1.0)
            behind = await run.committed()
            rows_during = await count(storage, "resolutions")
            failures = metric(run.metrics, "servicescore_sink_failures_total")

            writer.down.clear()
            await run.wait_committed(400)
            return behind, rows_during, failures

    behind, rows_during, failures = asyncio.run(scenario())

    assert behind is None, f"offset {behind} committed while ClickHouse was down"
    assert rows_during == 0
    assert failures >= 3
    plain = asyncio.run(count(storage, "resolutions"))
    final = asyncio.run(count(storage, "resolutions", final=True))
    assert final == 350, "every identity arrives"
    assert plain == writer.rows_written("resolutions"), "a refused insert left rows behind"
    assert plain <= 400
    by_engineer = asyncio.run(rows(storage, "SELECT engineer_id, count() AS n FROM resolutions "
                                            "FINAL GROUP BY engineer_id ORDER BY engineer_id"))
    assert by_engineer == [{"engineer_id": "E1", "n": 300}, {"engineer_id": "E2", "n": 50}]


def test_the_engine_refusing_inserts_is_retried_until_it_takes_them(kafka_bootstrap,
                                                                  topic_factory, storage):
    """No fake this time: the real engine refuses (the table is detached), then accepts."""
    topic = topic_factory(prefix="facts")
    facts = [resolution(f"T{i}") for i in range(120)]
    storage.command("DETACH TABLE resolutions")

    async def scenario():
        await produce(kafka_bootstrap, topic, facts)
        async with running(kafka_bootstrap, topic, ClickHouseWriter(storage)) as run:
            async def failures() -> float:
                return metric(run.metrics, "servicescore_sink_failures_total")
            await wait_until(run, failures, lambda n: n >= 2, "two refused inserts")
            behind = await run.committed()
            storage.command("ATTACH TABLE resolutions")
            await run.wait_committed(len(facts))
            return behind

    assert asyncio.run(scenario()) is None, "an offset was committed while inserts failed"
    assert asyncio.run(count(storage, "resolutions")) == len(facts)


def test_an_insert_retried_after_a_lost_reply_is_stored_once(kafka_bootstrap, topic_factory,
                                                             storage):
    topic = topic_factory(prefix="facts")
    facts = [resolution(f"T{i}") for i in range(200)]
    writer = LostReplyWriter(ClickHouseWriter(storage))

    async def scenario():
        await produce(kafka_bootstrap, topic, facts)
        async with running(kafka_bootstrap, topic, writer, batch_rows=1000) as run:
            await run.wait_committed(200)
            return run

    run = asyncio.run(scenario())

    assert writer.lost == 1 and metric(run.metrics, "servicescore_sink_failures_total") == 1
    lost_copy = writer.written[0]["resolutions"]  # inserted, but the sink saw a failure
    assert asyncio.run(count(storage, "resolutions", final=True)) == 200
    assert asyncio.run(count(storage, "resolutions")) == \
        writer.rows_written("resolutions") - lost_copy, "the retried batch is stored twice"


# ---------------------------------------------------------------------------------------------
# (c) replay
# ---------------------------------------------------------------------------------------------

def history() -> list[dict]:
    """Facts with corrections: newer versions, tombstones, stale versions after newer ones."""
    facts = []
    for i in range(40):
        t, engineer = f"T{i}", ("E1", "E2", "E3")[i % 3]
        facts += [ticket_row(t, v=1, responder=engineer),
                  resolution(t, v=2, engineer=engineer, fcr=i % 2 == 0,
                             aht_s=600.0 + 60 * i, aht_bh_s=60.0 * i),
                  ticket_row(t, v=2, responder=engineer, status="resolved"),
                  survey(f"S{i}", t, v=3, engineer=engineer, csat=1 + i % 5, nps=i % 11)]
        if i % 5 == 0:  # a second episode, then corrected away
            facts += [resolution(t, episode=2, v=4, engineer="E3"),
                      tombstone("resolution", v=5, ticket_id=t, episode=2,
                                resolved_at=BASE + 3_600_000)]
        if i % 2 == 0:
            facts += [escalation(f"X{i}", t, v=2, engineer=engineer)]
        if i % 7 == 0:  # a stale version arriving after the newer one
            facts += [resolution(t, v=1, engineer="E9", fcr=False)]
    return facts


def kpi_snapshot(storage) -> list[dict]:
    return kpis.compute(storage, 0, 10**15)


def test_a_replay_under_a_new_group_changes_no_kpi(kafka_bootstrap, topic_factory, storage):
    topic = topic_factory(prefix="facts")
    facts = history()

    async def scenario():
        await produce(kafka_bootstrap, topic, facts)
        async with running(kafka_bootstrap, topic, RecordingWriter(ClickHouseWriter(storage)),
                           batch_rows=50) as run:
            await run.wait_committed(len(facts))
        before = await counts(storage)
        kpis_before = await asyncio.to_thread(kpi_snapshot, storage)
        for table in TABLES:  # merged parts, as the background merges would leave them
            await asyncio.to_thread(storage.command, f"OPTIMIZE TABLE {table} FINAL")
        plain_merged = sum((await counts(storage, final=False)).values())

        replay = RecordingWriter(ClickHouseWriter(storage))
        async with running(kafka_bootstrap, topic, replay, batch_rows=37) as run:
            await run.wait_committed(len(facts))
        after = await counts(storage)
        plain_after = sum((await counts(storage, final=False)).values())
        kpis_after = await asyncio.to_thread(kpi_snapshot, storage)
        return before, after, plain_merged, plain_after, kpis_before, kpis_after

    before, after, plain_merged, plain_after, kpis_before, kpis_after = asyncio.run(scenario())

    assert {t: n for t, n in before.items() if n} == distinct_identities(facts)
    assert plain_after > plain_merged, "the replay inserted nothing: the test proves nothing"
    assert after == before
    assert kpis_after == kpis_before
    e1 = next(k for k in kpis_before if k["engineer_id"] == "E1")
    assert (e1["resolutions"], e1["escalations"], e1["surveys"]) == (14, 7, 14)
    assert "E9" not in {k["engineer_id"] for k in kpis_before}, "a stale version won"


def test_facts_at_the_reused_offsets_of_a_recreated_topic_are_stored(kafka_bootstrap,
                                                                     topic_factory, storage):
    """Kafka wiped (the topic deleted and made again, offsets from 0) while ClickHouse keeps its
    tables: the new facts are new data, not a retry of the old batch."""
    topic = topic_factory(prefix="facts")
    old = [resolution(f"OLD{i}") for i in range(5)]
    new = [resolution(f"NEW{i}") for i in range(5)]

    async def recreate():
        await delete_topics(kafka_bootstrap, [topic])
        deadline = time.monotonic() + TIMEOUT_S
        while True:  # the deletion completes in the background
            try:
                return await create_topic(kafka_bootstrap, topic, 1)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def scenario():
        await produce(kafka_bootstrap, topic, old)
        async with running(kafka_bootstrap, topic, RecordingWriter(ClickHouseWriter(storage)),
                           batch_rows=5) as run:
            await run.wait_committed(5)
        await recreate()
        assert await end_offset(kafka_bootstrap, topic) == 0
        await produce(kafka_bootstrap, topic, new)
        writer = RecordingWriter(ClickHouseWriter(storage))
        async with running(kafka_bootstrap, topic, writer, batch_rows=5) as run:
            await run.wait_committed(5)
        return writer, await rows(storage, "SELECT ticket_id FROM resolutions FINAL "
                                           "ORDER BY ticket_id")

    writer, stored = asyncio.run(scenario())

    assert writer.rows_written("resolutions") == 5
    assert [r["ticket_id"] for r in stored] == sorted(f["ticket_id"] for f in old + new), \
        "facts reported as written and committed are missing from ClickHouse"


# ---------------------------------------------------------------------------------------------
# (d) messages that are not facts: dead-lettered with their reason, then committed
# ---------------------------------------------------------------------------------------------

def test_a_message_that_is_not_a_fact_is_dead_lettered_and_committed(kafka_bootstrap,
                                                                     topic_factory, storage):
    topic = topic_factory(prefix="facts")
    messages = [resolution("T1"), b"not json {", resolution("T2"), b'{"hello": 1}', b"[1, 2]",
                None, b'{"kind": "weather", "v": 1, "del": 0}', b"\xff\xfe",
                b'{"kind": "resolution", "ticket_id": "T9", "episode": 1}', resolution("T3")]

    async def scenario():
        await produce(kafka_bootstrap, topic, messages)
        async with running(kafka_bootstrap, topic,
                           RecordingWriter(ClickHouseWriter(storage))) as run:
            await run.wait_committed(len(messages))
            first = await count(storage, "resolutions", final=True)
            await produce(kafka_bootstrap, topic, [resolution("T4")])
            await run.wait_committed(len(messages) + 1)
            run.alive()
            letters = await run.letters()
        return first, letters, run, await rows(storage, "SELECT ticket_id FROM resolutions "
                                                        "FINAL ORDER BY ticket_id")

    first, letters, run, stored = asyncio.run(scenario())

    assert first == 3
    assert [r["ticket_id"] for r in stored] == ["T1", "T2", "T3", "T4"]
    assert [(x["topic"], x["offset"]) for x in letters] == [("facts", o) for o in (1, 3, 4, 5, 6,
                                                                                  7, 8)]
    assert [x["reason"].split(":")[0] for x in letters] == [
        "not valid UTF-8 JSON", "kind", "not a JSON object (got list)",
        "empty message (no value)", "kind", "not valid UTF-8 JSON", "v"]
    assert base64.b64decode(letters[0]["raw_base64"]) == b"not json {"
    assert metric(run.metrics, "servicescore_dead_letters_total", topic="facts", step="sink",
                  kind="unreadable") == 4


@pytest.mark.parametrize(("bad", "reason"), [
    pytest.param({"kind": "resolution", "v": 1, "del": 0}, "resolved_at: identity column missing",
                 id="no-identity"),
    # A tombstone must carry the time of the identity (sql/007): without it, it could not
    # find the row's partition.
    pytest.param({"kind": "resolution", "ticket_id": "T1", "episode": 1, "v": 2, "del": 1},
                 "resolved_at: identity column missing", id="tombstone-without-its-time"),
    pytest.param({"kind": "survey", "event_id": "S1", "v": 1}, "del: must be 0 or 1",
                 id="no-del"),
    pytest.param({"kind": "survey", "event_id": "S1", "ticket_id": "T1", "csat": "five",
                  "submitted_at": BASE, "v": 1, "del": 0}, "csat: expected int, got str",
                 id="wrong-type"),
])
def test_a_fact_without_its_required_fields_is_dead_lettered(kafka_bootstrap, topic_factory,
                                                             storage, bad, reason):
    topic = topic_factory(prefix="facts")
    messages = [resolution("T1"), bad, resolution("T2")]

    async def scenario():
        await produce(kafka_bootstrap, topic, messages)
        async with running(kafka_bootstrap, topic,
                           RecordingWriter(ClickHouseWriter(storage))) as run:
            await run.wait_committed(len(messages))
            run.alive()
            letters = await run.letters()
        return await count(storage, "resolutions", final=True), letters

    stored, letters = asyncio.run(scenario())

    assert stored == 2
    assert [(x["offset"], x["reason"]) for x in letters] == [(1, reason)]


def test_a_row_the_engine_refuses_is_dead_lettered_and_the_rest_stored(kafka_bootstrap,
                                                                       topic_factory, storage):
    """A fact of the right types that ClickHouse still refuses (70000 in a UInt16 column) is
    found by bisection; before, it failed its batch forever and the sink stalled."""
    topic = topic_factory(prefix="facts")
    facts = [resolution(f"T{i}") for i in range(40)]
    facts[17] = resolution("T17", episode=70_000)
    facts[30] = {"facts": [resolution("T30"), resolution("T30", episode=-1)]}

    async def scenario():
        await produce(kafka_bootstrap, topic, facts)
        async with running(kafka_bootstrap, topic, ClickHouseWriter(storage),
                           batch_rows=1000) as run:
            await run.wait_committed(len(facts))
            run.alive()
            letters = await run.letters()
        return letters, run, await rows(storage, "SELECT ticket_id, episode FROM resolutions")

    letters, run, stored = asyncio.run(scenario())

    assert sorted((r["ticket_id"], r["episode"]) for r in stored) == sorted(
        [(f"T{i}", 1) for i in range(40) if i != 17]), "a refused row's neighbours were lost"
    assert [x["offset"] for x in letters] == [17, 30]
    assert "episode" in letters[0]["reason"], letters[0]["reason"]
    assert metric(run.metrics, "servicescore_dead_letters_total", topic="facts", step="sink",
                  kind="refused") == 2
    assert run.sink.failing_since is None and run.sink.last_commit_at is not None


class FlakyDeadLetters(DeadLetterProducer):
    """The real producer, failing like an unreachable broker while ``down`` is set."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(lambda: AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all"),
                         topic)
        self.down = threading.Event()
        self.failed = 0

    async def send(self, letters: list[dict]) -> None:
        if self.down.is_set():
            self.failed += 1
            raise KafkaConnectionError("test: the broker is unreachable")
        await super().send(letters)


def test_no_offset_is_committed_before_its_dead_letter_is_written(kafka_bootstrap,
                                                                  topic_factory, storage):
    topic = topic_factory(prefix="facts")
    messages = [resolution("T1"), b"not json", resolution("T2")]
    dead_letters = FlakyDeadLetters(kafka_bootstrap, f"{topic}-dlq")
    dead_letters.down.set()

    async def failed() -> int:
        return dead_letters.failed

    async def scenario():
        await produce(kafka_bootstrap, topic, messages)
        async with running(kafka_bootstrap, topic, ClickHouseWriter(storage),
                           dead_letters=dead_letters) as run:
            await wait_until(run, failed, lambda n: n >= 3, "three failed dead-letter sends")
            behind, failing = await run.committed(), run.sink.failing_since
            dead_letters.down.clear()
            await run.wait_committed(len(messages))
            return behind, failing, run.sink.failing_since, await run.letters()

    behind, failing, recovered, letters = asyncio.run(scenario())

    assert behind is None, f"offset {behind} committed before the dead letter was written"
    assert failing is not None and recovered is None
    assert [x["offset"] for x in letters] == [1]


# ---------------------------------------------------------------------------------------------
# (e) the engineer-roster topic
# ---------------------------------------------------------------------------------------------

def test_roster_records_are_validated_and_the_bad_ones_dead_lettered(kafka_bootstrap,
                                                                     topic_factory, storage):
    topic = topic_factory(prefix="roster")
    records = [
        ("R1", {"engineer_id": "R1", "name": "张三", "role": "field_engineer", "team_id": "T1"}),
        ("R2", {"engineer_id": "R2", "role": "field_engineer", "team_id": 123, "active": True}),
        ("R3", {"engineer_id": "R3", "role": "service_rep", "active": "false"}),
        ("R4", {"engineer_id": "R4", "role": "manager"}),
        ("R5", {"engineer_id": "R5", "role": "service_rep", "name": {"first": "Li"}}),
        ("R6", b"not json"),
        ("R7", {"engineer_id": "R7", "role": "support_specialist", "active": False,
                "team_id": None, "name": None, "hired": {"year": 2020}}),
        ("R8", {"engineer_id": "R8", "role": "service_rep"}),
        ("R8", None),  # tombstone: R8 leaves the roster
        ("", None),  # a tombstone must name the engineer
        ("X9", {"engineer_id": "R9", "role": "service_rep"}),
    ]

    async def scenario():
        await produce_keyed(kafka_bootstrap, topic, records)
        async with running(kafka_bootstrap, topic, ClickHouseWriter(storage),
                           logical=ROSTER_TOPIC) as run:
            await run.wait_committed(len(records))
            run.alive()
            letters = await run.letters()
        return letters, await rows(storage, "SELECT engineer_id, name, role, team_id, active "
                                            "FROM roster FINAL ORDER BY engineer_id")

    letters, stored = asyncio.run(scenario())

    assert stored == [
        {"engineer_id": "R1", "name": "张三", "role": "field_engineer", "team_id": "T1",
         "active": True},
        {"engineer_id": "R7", "name": "", "role": "support_specialist", "team_id": None,
         "active": False}]
    assert [(x["topic"], x["offset"], x["reason"].split(":")[0]) for x in letters] == [
        (ROSTER_TOPIC, 1, "team_id"), (ROSTER_TOPIC, 2, "active"), (ROSTER_TOPIC, 3, "role"),
        (ROSTER_TOPIC, 4, "name"), (ROSTER_TOPIC, 5, "not valid UTF-8 JSON"),
        (ROSTER_TOPIC, 9, "key"), (ROSTER_TOPIC, 10, "key")]


# ---------------------------------------------------------------------------------------------
# (f) stop
# ---------------------------------------------------------------------------------------------

def test_stop_flushes_the_pending_partial_batch(kafka_bootstrap, topic_factory, storage):
    topic = topic_factory(prefix="facts")
    facts = [resolution(f"T{i}") for i in range(25)]
    writer = RecordingWriter(ClickHouseWriter(storage))

    async def position(run: SinkRun) -> int | None:
        if not run.consumers:
            return None
        try:
            return await run.consumers[0].position(TopicPartition(topic, 0))
        except IllegalStateError:  # not assigned yet
            return None

    async def scenario():
        await produce(kafka_bootstrap, topic, facts)
        # Neither limit is reached: only stop() can flush these 25 messages.
        async with running(kafka_bootstrap, topic, writer, batch_rows=10_000,
                           batch_seconds=5) as run:
            await wait_until(run, lambda: position(run), lambda p: p == 25,
                             "the sink read all 25 messages")
            pending = (len(writer.batch_sizes), await run.committed(),
                       await count(storage, "resolutions"))
            await run.stop()  # flushes the pending batch (bounded by the test's own timeout)
            return pending, await run.committed()

    pending, after = asyncio.run(scenario())

    assert pending == (0, None, 0), "the batch was flushed before stop()"
    assert writer.batch_sizes == [25]
    assert after == 25
    assert asyncio.run(count(storage, "resolutions", final=True)) == 25


# ---------------------------------------------------------------------------------------------
# (g) scale-out: M sinks in one group, a rebalance during an outage
# ---------------------------------------------------------------------------------------------

async def end_offsets(bootstrap: str, topic: str, partitions: int) -> int:
    """The sum of the topic's end offsets over its partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


def test_a_sink_joining_and_leaving_during_an_outage_loses_nothing(kafka_bootstrap,
                                                                  topic_factory, storage):
    """Two sinks in one consumer group over four partitions while ClickHouse refuses inserts:
    the second joins, takes partitions, dies; the first gets them back, still failing. Once
    ClickHouse is back every fact is stored exactly once. Before, the first sink fetched the
    reassigned partitions' records while it backed off, threw them away and later committed
    past them."""
    topic = topic_factory(partitions=4, prefix="facts")
    group = f"sink-test-{uuid.uuid4().hex[:10]}"
    waves = [[(f"{wave}{i}", resolution(f"{wave}{i}"), i % 4) for i in range(n)]
             for wave, n in (("A", 400), ("B", 200), ("C", 40))]
    writer = OutageWriter(ClickHouseWriter(storage))
    writer.down.set()

    def failures(run: SinkRun):
        async def probe() -> float:
            return metric(run.metrics, "servicescore_sink_failures_total")
        return probe

    def owned(run: SinkRun):
        async def probe() -> set[int]:
            return run.assigned()
        return probe

    async def scenario():
        await produce_keyed(kafka_bootstrap, topic, waves[0])
        async with running(kafka_bootstrap, topic, writer, batch_rows=50, group=group) as first:
            await wait_until(first, failures(first), lambda n: n >= 2, "the first sink fails")
            second = SinkRun(kafka_bootstrap, topic, writer, batch_rows=50, group=group)
            second.dlq = first.dlq
            second.task = asyncio.create_task(second.sink.run())
            await wait_until(second, owned(second), bool, "the second sink owns partitions")
            await wait_until(first, owned(first), lambda p: len(p) < 4, "the first shares")
            await produce_keyed(kafka_bootstrap, topic, waves[1])
            await wait_until(second, failures(second), lambda n: n >= 2, "the second fails")
            second.task.cancel()  # dies: its consumer leaves the group
            await asyncio.gather(second.task, return_exceptions=True)
            await wait_until(first, owned(first), lambda p: p == {0, 1, 2, 3},
                             "the first sink owns all four partitions again")
            before = metric(first.metrics, "servicescore_sink_failures_total")
            await wait_until(first, failures(first), lambda n: n >= before + 3,
                             "the first sink fails three more times with all partitions")
            behind = await first.committed()
            writer.down.clear()
            await produce_keyed(kafka_bootstrap, topic, waves[2])
            total = await end_offsets(kafka_bootstrap, topic, 4)
            await wait_until(first, first.committed, lambda n: n == total,
                             f"the group committed all {total} messages")
        return behind, total, await rows(storage, "SELECT ticket_id FROM resolutions")

    behind, total, stored = asyncio.run(scenario())

    produced = sorted(key for wave in waves for key, _, _ in wave)
    assert total == len(produced)
    assert behind is None, f"{behind} offsets committed while ClickHouse refused every insert"
    assert sorted(r["ticket_id"] for r in stored) == produced, (
        f"{len(set(produced) - {r['ticket_id'] for r in stored})} facts lost, "
        f"{len(stored) - len({r['ticket_id'] for r in stored})} stored twice")
