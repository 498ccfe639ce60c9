"""The intake on a plain aiokafka consumer group, beside the Faust agents in the worker.

Faust's stream spends more per message than routing does: several asyncio tasks, flow control,
decoding and an event object per message (bench/profile.py, ../shared/FACTS.md "Throughput").
The intake holds no state, so it needs none of what Faust adds; the lifecycle, which holds the
tickets' states, stays a Faust agent and receives one bundle per partition and batch.

One batch at a time, per consumer of the group ``<app>-intake``:

1. fetch up to BATCH_EVENTS events of the event topics;
2. route each (streams/intake.py): its ticket record into the bundle of its ticket's
   ``<app>-ticket-events`` partition, a bad message into its dead letter, a complaint or an
   assessment into a facts message;
3. move the intake's watermark (the event time it has seen, streams/retirement.py), which the
   bundles carry to the lifecycle;
4. send it all and wait until the broker has every message (acks=all);
5. only then commit the batch's offsets.

A crash anywhere before 5 delivers the batch again: a ticket's state takes an event once (its
event id), facts and dead letters are upserts by identity. A send the broker refuses stops the
process before the commit (``fail_stop``). A commit a rebalance refuses leaves the batch to the
partitions' new owner, which reads it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaError

from schemas.deadletter import REPLAY_HEADER, dead_letter
from schemas.events import DLQ_TOPIC, EVENT_TOPICS, intake_group, ticket_events_topic
from schemas.facts import FACTS_TOPIC
from servicescore.core.faults import Faults
from servicescore.core.metrics import Metrics
from streams import retirement, ticket
from streams.intake import route

log = logging.getLogger("servicescore.streams")
# An intake batch. A bundle of all of it stays below Kafka's 1 MiB message limit (a ticket
# record is under 400 bytes), whatever the number of partitions.
BATCH_EVENTS = 2000
FACTS_PER_MESSAGE = 500  # a fact is under 2 KiB: a facts message stays far below 1 MiB


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    partition: int | None = None


class Intake:
    def __init__(self, app_id: str, kafka: dict, topic_prefix: str, partitions: int,
                 timezone: str, metrics: Metrics, faults: Faults,
                 ticket_partition: Callable[[str, int], int],
                 fail_stop: Callable[[str, BaseException], None]):
        self.app_id, self.kafka, self.prefix = app_id, kafka, topic_prefix
        self.partitions, self.timezone = partitions, timezone
        self.metrics, self.faults = metrics, faults
        self.ticket_partition, self.fail_stop = ticket_partition, fail_stop
        self.dlq = f"{topic_prefix}{DLQ_TOPIC}"
        self.facts = f"{topic_prefix}{FACTS_TOPIC}"
        self.ticket_events = ticket_events_topic(app_id)
        # The event time this intake has seen (streams/retirement.py): per source partition
        # the highest time routed from it, and over them the watermark its bundles carry.
        self.name = uuid.uuid4().hex[:12]
        self.highs: dict[TopicPartition, int] = {}
        self.clock = 0

    # -- one batch ---------------------------------------------------------------------------

    def route_batch(self, messages) -> tuple[list[Outgoing], dict[int, list[dict]]]:
        """What a batch of consumer records sends: the dead letters and the facts in chunks,
        and the ticket records by ticket-events partition (``bundles``)."""
        bundles: dict[int, list[dict]] = {}
        out: list[Outgoing] = []
        facts: list[dict] = []
        stamps: list[float] = []  # Kafka timestamps (s) of the events behind ``facts``
        outcomes: Counter = Counter()
        now = int(time.time() * 1000)
        cut = len(self.prefix)
        for message in messages:
            topic = message.topic[cut:]
            try:
                routed = route(topic, message.value, message.partition, message.offset, now,
                               self.timezone, _header(message, REPLAY_HEADER))
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the pipeline
                log.exception("intake failed on %s[%d]@%d", topic, message.partition,
                              message.offset)
                refused = ticket.internal_error(exc)
                letter = dead_letter(topic, message.partition, message.offset, message.value,
                                     refused.reason, now)
                routed_key = f"{topic}:{message.partition}:{message.offset}"
                out.append(Outgoing(self.dlq, routed_key.encode(), orjson.dumps(letter)))
                outcomes[topic, "dead_letter"] += 1
                self.metrics.dead_letters.labels(topic, "intake", refused.kind).inc()
                continue
            self.faults.reach("intake:routed")
            if routed.target == "dlq":
                outcomes[topic, "dead_letter"] += 1
                self.metrics.dead_letters.labels(topic, "intake", routed.kind).inc()
                out.append(Outgoing(self.dlq, routed.key.encode(), orjson.dumps(routed.value)))
            elif routed.target == "ticket":
                outcomes[topic, "ok"] += 1
                # "at": when the event reached Kafka, for the event-to-fact delay.
                routed.value["at"] = message.timestamp
                tp = TopicPartition(message.topic, message.partition)
                high = retirement.advance(self.highs.get(tp, 0), routed.value["t"], now)
                if high:
                    self.highs[tp] = high
                bundles.setdefault(self.ticket_partition(routed.key, self.partitions),
                                   []).append(routed.value)
            else:
                outcomes[topic, "ok"] += 1
                facts.append(routed.value)
                stamps.append(message.timestamp / 1000)
        if facts:
            out += self.facts_messages(facts, facts[0]["engineer_id"])
            done = time.time()
            for stamp in stamps:
                self.metrics.event_to_fact_seconds.observe(max(0.0, done - stamp))
        for (topic, outcome), n in outcomes.items():
            self.metrics.events.labels(topic, outcome).inc(n)
        return out, bundles

    def bundle_messages(self, bundles: dict[int, list[dict]]) -> list[Outgoing]:
        """One message per ticket-events partition, with this intake's watermark."""
        return [Outgoing(self.ticket_events, recs[0]["ticket_id"].encode(),
                         orjson.dumps({"recs": recs, "clock": self.clock, "from": self.name}),
                         partition)
                for partition, recs in bundles.items()]

    async def advance_clock(self, consumer: AIOKafkaConsumer) -> int:
        """The watermark over the source partitions owned, after a batch: a partition has
        unread records while the consumer's position is below its high watermark."""
        owned = []
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            unread = end is None or await consumer.position(tp) < end
            owned.append((self.highs.get(tp), unread))
        self.clock = retirement.watermark(self.clock, owned)
        return self.clock

    def facts_messages(self, items: list[dict], key: str) -> list[Outgoing]:
        return [Outgoing(self.facts, key.encode(), value)
                for value in facts_payloads(items, self.metrics)]

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled (the worker stopping): a batch in flight is left uncommitted."""
        sources = [f"{self.prefix}{t}" for t in EVENT_TOPICS]
        group = intake_group(self.app_id)
        consumer = AIOKafkaConsumer(
            **self.kafka, group_id=group, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=BATCH_EVENTS,
            max_partition_fetch_bytes=4 << 20, max_poll_interval_ms=600_000,
            session_timeout_ms=10_000, heartbeat_interval_ms=1_000)
        # acks=all: a message counts as sent once every in-sync replica has it.
        producer = AIOKafkaProducer(**self.kafka, acks="all", linger_ms=10,
                                    max_batch_size=512 * 1024, max_request_size=2 << 20)
        earlier = await self._faust_offsets(sources)
        consumer.subscribe(sources, listener=_StartWhereFaustLeftOff(consumer, earlier))
        await producer.start()
        try:
            await consumer.start()
            try:
                while True:
                    polled = await consumer.getmany(timeout_ms=1000, max_records=BATCH_EVENTS)
                    if polled:
                        await self._batch(consumer, producer, polled)
            finally:
                await consumer.stop()
        finally:
            await producer.stop()

    async def _batch(self, consumer, producer, polled) -> None:
        outgoing, bundles = self.route_batch([m for ms in polled.values() for m in ms])
        await self.advance_clock(consumer)
        outgoing += self.bundle_messages(bundles)
        try:
            sent = [await producer.send(o.topic, o.value, key=o.key, partition=o.partition)
                    for o in outgoing]
            await asyncio.gather(*sent)
        except Exception as exc:  # noqa: BLE001 - whatever the producer raises, stop safely
            self.fail_stop("sending the intake's outputs", exc)
        self.faults.reach("intake:sent")
        owned = consumer.assignment()
        offsets = {tp: messages[-1].offset + 1 for tp, messages in polled.items() if tp in owned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("intake commit failed, the batch will be read again: %s", exc)

    async def _faust_offsets(self, sources: list[str]) -> dict:
        """The event topics' offsets committed by the worker's Faust group (versions before
        0.7 consumed them there): an upgraded worker goes on from them, not from the start."""
        admin = AIOKafkaAdminClient(**self.kafka)
        try:
            await admin.start()
            committed = await admin.list_consumer_group_offsets(self.app_id)
        except KafkaError as exc:
            log.warning("the worker group's offsets could not be read: %s", exc)
            return {}
        finally:
            await admin.close()
        return {tp: meta.offset for tp, meta in committed.items()
                if tp.topic in sources and meta.offset >= 0}


class _StartWhereFaustLeftOff(ConsumerRebalanceListener):
    """A partition the intake group never committed starts at the Faust group's offset."""

    def __init__(self, consumer: AIOKafkaConsumer, earlier: dict):
        self.consumer, self.earlier = consumer, earlier

    async def on_partitions_revoked(self, revoked) -> None:
        return None

    async def on_partitions_assigned(self, assigned) -> None:
        if not self.earlier:
            return
        for tp in assigned:
            if tp in self.earlier and await self.consumer.committed(tp) is None:
                self.consumer.seek(tp, self.earlier[tp])


def facts_payloads(items: list[dict], metrics: Metrics) -> list[bytes]:
    """Facts messages for ``items`` (consumers/message.py reads them), counted by kind: a few
    messages for everything a batch emitted, since the cost of a send is per message."""
    for kind, n in Counter(fact["kind"] for fact in items).items():
        metrics.facts.labels(kind).inc(n)
    # ts lets the sink measure the delay from emission to insert.
    now = int(time.time() * 1000)
    return [orjson.dumps({"ts": now, "facts": items[start:start + FACTS_PER_MESSAGE]})
            for start in range(0, len(items), FACTS_PER_MESSAGE)]


def _header(message, name: str) -> bytes | None:
    for key, value in message.headers or ():
        if key == name:
            return value
    return None
