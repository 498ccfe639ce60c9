"""The Faust app: thin wiring around the pure steps of streams/.

Topology (names are stable: they reach consumer groups, changelogs and state)::

    9 event topics --intake--> events-dlq              (bad messages, with their reason)
                          \\--> <app>-ticket-events    (one bundle per partition and batch)
                          \\--> facts                  (complaints, assessments)
    <app>-ticket-events --lifecycle [table ticket-state]--> facts
                                                       \\--> events-dlq (refused records)

Repeats through a new ticket of the same customer and category are a relation between tickets:
ClickHouse answers them from the facts (sql/004), no stream state is kept for them.

The intake is a plain aiokafka consumer group, ``<app>-intake`` (streams/intake_loop.py: it
holds no state, and Faust's stream costs more per message than routing); the lifecycle is a
Faust agent in the group ``<app>``, with the tickets' states in its table.

At-least-once, and nothing a producer sends can stop it:
- Faust commits an offset only after the producer has flushed what the agents sent for it; the
  table's state makes redelivery idempotent (streams/lifecycle.py).
- Any error one message causes is that message's dead letter (``quarantine``), never an agent
  crash: Faust acknowledges the event of an agent that raises, so a crash would lose it.
- Every message we send is bounded: a dead letter keeps a prefix of a large message, a ticket's
  state has a byte budget (streams/ticket.py), facts go in chunks.
- If a send fails even so (the broker refuses), the process exits at once without acknowledging
  (``fail_stop``): a restart reprocesses the event instead of committing past it.
Agents run with concurrency 1 (faust-streaming#606).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path

import faust
import orjson
from aiokafka.partitioner import murmur2

from schemas.calendar import WorkCalendar
from schemas.deadletter import dead_letter
from schemas.events import DLQ_TOPIC, ticket_events_topic
from schemas.facts import FACTS_TOPIC
from servicescore.core.faults import Faults
from servicescore.core.metrics import Metrics
from streams import lifecycle, retirement, ticket
from streams.facts import Derived
from streams.intake_loop import Intake, facts_payloads

log = logging.getLogger("servicescore.streams")


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker needs, as plain values (built from the settings by the service)."""

    app_id: str
    broker: dict  # faust.App's broker and credentials (servicescore.kafka.client)
    kafka: dict  # the same for aiokafka's clients (the intake's)
    data_dir: Path  # the tables' local store
    calendar: WorkCalendar
    timezone: str
    partitions: int = 6
    topic_prefix: str = ""
    crash_at: str | None = None  # crash tests only (servicescore/core/faults.py)
    allowed_lateness_ms: int = 60 * retirement.DAY_MS

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def now_ms() -> int:
    return int(time.time() * 1000)


def fail_stop(what: str, exc: BaseException) -> None:
    """A send the broker refused: stop before Faust can acknowledge the event (it would commit
    past an event whose outcome was not written). The restart reprocesses it."""
    log.critical("%s failed, stopping without committing: %r", what, exc)
    logging.shutdown()
    os._exit(75)


def create_app(config: WorkerConfig, metrics: Metrics, store: str = "rocksdb://") -> faust.App:
    datadir = config.data_dir / "worker" / config.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        config.app_id,
        store=store,
        datadir=str(datadir),
        topic_partitions=config.partitions,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        producer_acks=-1,
        # Faust sends each message in its own request unless told to linger: batching the
        # producer is most of the throughput.
        producer_linger=0.01,
        producer_max_batch_size=512 * 1024,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
        # A crashed worker's partitions move to the others after this long (Faust's default
        # of 60 s would stall a restart for a minute).
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        **config.broker,
    )
    seek_before_streaming(app)
    # Past this many pending sends Faust waits for the broker on every incoming message
    # (faust-streaming#173); a batch sends more than its default of 100.
    app.producer.buffer.max_messages = 20_000
    calendar = config.calendar
    faults = Faults.parse(config.crash_at)
    dlq = app.topic(config.topic(DLQ_TOPIC), key_serializer="raw", value_serializer="json")
    # Raw: facts are encoded with orjson (Faust's json codec costs more).
    facts = app.topic(config.topic(FACTS_TOPIC), key_serializer="raw", value_serializer="raw")
    # Raw: the agent decodes the bundles with orjson (Faust's json codec costs more).
    ticket_events = app.topic(ticket_events_topic(config.app_id), key_serializer="raw",
                              value_serializer="raw", partitions=config.partitions)
    # Values are the compact JSON of streams/ticket.py (schema-versioned), as raw bytes.
    states = app.Table("ticket-state", partitions=config.partitions, key_type=bytes,
                       value_type=bytes)
    # The facts of recently changed tickets: the ticket's next event need not walk its history
    # again (a restored or moved state has another version, and is walked).
    recent = FactsCache(10_000)
    # The event time per ticket-events partition: the watermarks of the intakes' bundles in it
    # (streams/retirement.py). Per partition, since Faust reads its partitions unevenly too.
    watermarks: defaultdict[int, retirement.Watermarks] = defaultdict(retirement.Watermarks)
    lateness = config.allowed_lateness_ms
    due = retirement.RetirementIndex()

    @app.on_partitions_revoked.connect
    async def _forget_moved_tickets(sender, revoked, **kwargs) -> None:
        # A ticket whose partition moves is changed by another worker meanwhile; should it come
        # back, a state built elsewhere could carry the version of one cached here. Only a
        # cached step of this worker's own last write may be reused. The retirement index is
        # rebuilt from the store for the same reason.
        recent.clear()
        due.forget(range(config.partitions))

    def observe_delays(done: float, stamps: list[float]) -> None:
        for stamp in stamps:
            metrics.event_to_fact_seconds.observe(max(0.0, done - stamp))

    async def send(topic, key: str, value, partition: int | None = None) -> None:
        what = f"sending to {topic.get_topic_name()}"
        try:
            pending = await topic.send(key=key.encode(), value=value, partition=partition)
        except Exception as exc:  # noqa: BLE001 - whatever the producer raises, stop safely
            fail_stop(what, exc)
        # A delivery that fails later would not stop Faust's commit (the producer's flush
        # does not raise): stop before the commit goes on.
        pending.add_done_callback(lambda done: done.cancelled() or done.exception() is None
                                  or fail_stop(what, done.exception()))

    async def send_facts(items: list[dict], key: str) -> None:
        """Few messages for everything a step emitted (Faust's cost is per message)."""
        for payload in facts_payloads(items, metrics):
            await send(facts, key, payload)

    async def quarantine(topic: str, partition: int, offset: int, raw: bytes | None,
                         refused: ticket.Refused, step: str) -> None:
        metrics.dead_letters.labels(topic, step, refused.kind).inc()
        letter = dead_letter(topic, partition, offset, raw, refused.reason, now_ms())
        await send(dlq, f"{topic}:{partition}:{offset}", letter)

    intake = Intake(config.app_id, config.kafka, config.topic_prefix, config.partitions,
                    config.timezone, metrics, faults, ticket_partition, fail_stop)

    @app.task
    async def intake_task() -> None:
        try:
            await intake.run()
        except asyncio.CancelledError:
            raise  # the worker stopping
        except Exception as exc:  # noqa: BLE001 - a worker without its intake must not idle on
            fail_stop("the intake", exc)

    @app.agent(ticket_events, name="lifecycle", concurrency=1)
    async def lifecycle_agent(stream):
        # One message is one bundle of one partition (route_batch): its tickets' states are
        # read and written once per bundle, in this message's partition as Faust's table
        # requires, and its facts go out in a few messages.
        async for raw in stream:
            value = orjson.loads(raw)
            partition = stream.current_event.message.partition
            # Before the bundle's records: a record of a ticket due by the clock so far finds
            # it retired whichever bundle reaches the partition first.
            try:
                await retire(partition)
            except Exception:  # noqa: BLE001 - retirement is housekeeping: it retries next time
                log.exception("retiring ticket states of partition %d failed", partition)
                due.forget(range(config.partitions))
            recs = value["recs"] if "recs" in value else [value]  # a record of before 0.6
            by_ticket: dict[str, list[dict]] = {}
            sources: dict[int, list] = {}  # id(record) -> where it came from (its dead letter)
            arrived: dict[int, int] = {}  # id(record) -> its source message's Kafka timestamp
            for rec in recs:
                by_ticket.setdefault(rec["ticket_id"], []).append(rec)
                sources[id(rec)] = rec.pop("src", None) or ["ticket-events", -1, -1]
                if "at" in rec:
                    arrived[id(rec)] = rec.pop("at")
            out: list[dict] = []
            refused: list[tuple[list, dict, ticket.Refused]] = []
            arrivals: list[float] = []  # Kafka timestamps (s) of the records taken
            now, clock = now_ms(), watermarks[partition].clock
            for ticket_id, ticket_recs in by_ticket.items():
                key = ticket_id.encode()
                stored = states.get(key)
                fresh = []
                for rec in ticket_recs:
                    if stored is None and retirement.too_late(rec["t"], clock, lateness):
                        refused.append((sources[id(rec)], rec, ticket.Refused("too_late", (
                            retirement.too_late_reason(ticket_id, rec["t"], clock,
                                                       lateness)))))
                    else:
                        fresh.append(rec)
                if not fresh:
                    continue
                try:
                    state = ticket.decode(stored, ticket_id)
                    steps = lifecycle.apply_many(state, fresh, calendar, now,
                                                 recent.get(ticket_id))
                    recent.put(ticket_id, steps.after)
                except Exception:  # noqa: BLE001 - a bug must not stop the pipeline
                    log.exception("lifecycle failed on ticket %s", ticket_id)
                    recent.drop(ticket_id)
                    state, steps = one_by_one(stored, ticket_id, fresh, now)
                refused += [(sources[id(rec)], rec, why) for rec, why in steps.refused]
                arrivals += [arrived[id(rec)] / 1000 for rec in steps.taken if id(rec) in arrived]
                if steps.held:
                    metrics.held.inc(steps.held)
                out.extend(steps.facts)
                if state is not None and steps.taken:
                    encoded = ticket.encode(state)
                    metrics.ticket_state_bytes.observe(len(encoded))
                    states[key] = encoded
                    due.add(partition, key, retirement.retire_at_ms(state, lateness))
                    faults.reach("lifecycle:state")
            if out:
                await send_facts(out, recs[0]["ticket_id"])
            faults.reach("lifecycle:facts")
            observe_delays(time.time(), arrivals)
            # After the bundle: its own records are judged by the clock before it.
            moved = watermarks[partition].hear(*bundle_clock(value, recs, clock, now),
                                               time.monotonic())
            if moved > clock:
                metrics.newest_event_seconds.set(max(w.clock for w in watermarks.values()) / 1000)
            for source, rec, refusal in refused:
                await quarantine(source[0], source[1], source[2],
                                 ticket.encode(ticket.wire_event(rec)), refusal, "lifecycle")

    def one_by_one(stored: bytes | None, ticket_id: str, recs: list[dict],
                   now: int) -> tuple[dict | None, lifecycle.Steps]:
        """After a failed ``apply_many``: each record on its own from the stored state, so that
        only a record that fails itself is refused (its dead letter names the error)."""
        try:
            state = ticket.decode(stored, ticket_id)
        except Exception as exc:  # noqa: BLE001 - the stored state itself is bad
            why = ticket.internal_error(exc)
            return None, lifecycle.Steps([], [], [(rec, why) for rec in recs], 0)
        facts, taken, refused, held = [], [], [], 0
        for rec in recs:
            try:
                step = lifecycle.apply_many(state, [rec], calendar, now)
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the pipeline
                log.exception("lifecycle failed on ticket %s", ticket_id)
                refused.append((rec, ticket.internal_error(exc)))
                # The step may have changed the state half-way: start again from the stored
                # state with the records taken so far (deterministic; their facts are kept).
                try:
                    state = ticket.decode(stored, ticket_id)
                    for again in taken:
                        lifecycle.apply(state, again, calendar, now)
                except Exception:  # noqa: BLE001 - the stored state itself is bad
                    return None, lifecycle.Steps(facts, [], refused, 0)
                continue
            facts += step.facts
            taken += step.taken
            refused += step.refused
            held += step.held
        return state, lifecycle.Steps(facts, taken, refused, held)

    async def retire(partition: int) -> None:
        """Retire the due ticket states of ``partition`` (streams/retirement.py), inside the
        stream iteration of one of its messages: Faust writes a table's changelog to the
        partition of the message being processed, and a key's partition is its bundle's."""
        if not due.known(partition):
            index_store()
        clock = watermarks[partition].clock
        for key in due.pop_due(partition, clock):
            raw = states.get(key)
            if raw is None:
                continue
            state = ticket.decode(raw, key.decode())
            if not retirement.due(state, clock, lateness):
                due.add(partition, key, retirement.retire_at_ms(state, lateness))
                continue
            held = ticket.held(state)
            if held:  # its opened never came: its events become dead letters, not nothing
                reason = retirement.held_reason(state["tid"], lateness)
                for rec in ticket.ordered(state):
                    await quarantine(ticket.TOPICS[rec["k"]], retirement.NO_PARTITION,
                                     retirement.letter_offset(rec["id"]),
                                     ticket.encode(ticket.wire_event(rec)),
                                     ticket.Refused("too_late", reason), "lifecycle")
                # ... and no longer wait: their rows in the held listing go.
                await send_facts(lifecycle.unheld(state), state["tid"])
            del states[key]
            recent.drop(state["tid"])
            metrics.tickets_retired.labels("held" if held else "opened").inc()

    def index_store() -> None:
        """After an assignment: when each stored state may retire, in one pass over the store
        (the worker's partitions only) for all partitions at once."""
        for partition in range(config.partitions):
            due.start(partition)
        for key, raw in states.items():  # a sync loop: nothing writes meanwhile
            try:
                retire_at = retirement.retire_at_ms(ticket.decode(raw, key.decode()), lateness)
            except Exception:  # noqa: BLE001 - a state this version cannot read stays
                log.exception("ticket state %r cannot be read; it is never retired", key)
                continue
            due.add(ticket_partition(key.decode(), config.partitions), key, retire_at)

    return app


def seek_before_streaming(app: faust.App) -> None:
    """Stop the consumer's flow before Faust resumes the source partitions after a rebalance.

    Faust 0.15 resumes the source partitions and only then awaits the seek to the committed
    offsets, with the fetcher already running (recovery started it for the changelogs). Records
    fetched in between reach the agents from the consumer's own position while Faust's offset
    bookkeeping (read offsets, gaps, the committed head) is reset under them by the seek; seen in
    the crash test as a few events after a restart committed but never processed (they are
    neither in ticket-events nor dead-lettered). With the flow stopped, the fetcher hands out
    nothing and drops what it holds (Faust seeks back to the committed offsets when it sees the
    flow stopped); Faust resumes the flow itself once the seek is done (Recovery.
    on_recovery_completed and _resume_streams, which send this signal first)."""

    @app.on_rebalance_complete.connect
    async def _stop_flow_until_seeked(sender, **kwargs) -> None:
        app.consumer.stop_flow()


def bundle_clock(value: dict, recs: list[dict], clock_ms: int, now: int) -> tuple[str, int]:
    """(the intake that sent a bundle, its watermark); a bundle of before 0.7 has none: the
    clock moves by its records' times, as it did then."""
    if "clock" in value:
        return value["from"], value["clock"]
    for rec in recs:
        clock_ms = retirement.advance(clock_ms, rec["t"], now)
    return "", clock_ms


class FactsCache:
    """ticket_id -> what its state said after its last step (streams.facts.Derived, checked
    against the state's version before use), the least recently used dropped beyond ``size``."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[str, Derived] = OrderedDict()

    def get(self, ticket_id: str) -> Derived | None:
        return self.items.get(ticket_id)

    def clear(self) -> None:
        self.items.clear()

    def drop(self, ticket_id: str) -> None:
        self.items.pop(ticket_id, None)

    def put(self, ticket_id: str, derived: Derived | None) -> None:
        if derived is None:
            return
        self.items[ticket_id] = derived
        self.items.move_to_end(ticket_id)
        if len(self.items) > self.size:
            self.items.popitem(last=False)


@functools.lru_cache(maxsize=1 << 16)  # murmur2 is pure Python; a ticket's events recur
def ticket_partition(ticket_id: str, partitions: int) -> int:
    """The ticket-events partition (and so the state partition) of a ticket: Kafka's default
    partitioner of the key, as the per-event sends of earlier versions used, so that a
    ticket's existing state stays where it is."""
    return (murmur2(ticket_id.encode()) & 0x7FFFFFFF) % partitions
