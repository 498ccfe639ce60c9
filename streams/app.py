"""The Faust app: thin wiring around the pure steps of streams/.

Topology (names are stable: they reach consumer groups, changelogs and state)::

    9 event topics --intake--> events-dlq              (bad messages, with their reason)
                          \\--> <app>-ticket-events    (records re-keyed by ticket_id)
                          \\--> facts                  (complaints, assessments)
    <app>-ticket-events --lifecycle [table tickets]--> facts
                                                   \\--> <app>-customer-index (by customer+category)
    <app>-customer-index --repeats [table customer-index]--> facts (repeat flags)

At-least-once: Faust commits an offset only after the producer has flushed what the agent
sent for it; the tables' state makes redelivery idempotent (streams/lifecycle.py).
Agents run with concurrency 1 (faust-streaming#606).
"""

from __future__ import annotations

import time

import faust

from schemas.events import DLQ_TOPIC, EVENT_TOPICS
from schemas.facts import FACTS_TOPIC
from servicescore.metrics import Metrics
from servicescore.settings import Settings
from streams import lifecycle, repeat, ticket
from streams.calendar import WorkCalendar
from streams.intake import route


def calendar_from(settings: Settings) -> WorkCalendar:
    return WorkCalendar(settings.timezone, dict(settings.work_hours),
                        frozenset(settings.holidays), frozenset(settings.workdays))


def kafka_options(settings: Settings) -> dict:
    """Faust broker credentials for a secured cluster (SASL / TLS)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    import ssl

    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if protocol == "SSL":
        return {"broker_credentials": faust.SSLCredentials(context)}
    return {"broker_credentials": faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value()
        if settings.kafka_sasl_password else None,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
        ssl_context=context if protocol == "SASL_SSL" else None,
    )}


def create_app(settings: Settings, metrics: Metrics, store: str = "rocksdb://") -> faust.App:
    datadir = settings.data_dir / "worker" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=store,
        datadir=str(datadir),
        topic_partitions=settings.partitions,
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
        **kafka_options(settings),
    )
    calendar = calendar_from(settings)
    sources = app.topic(*(settings.topic(t) for t in EVENT_TOPICS),
                        key_serializer="raw", value_serializer="raw")
    dlq = app.topic(settings.topic(DLQ_TOPIC), key_serializer="raw", value_serializer="json")
    facts = app.topic(settings.topic(FACTS_TOPIC), key_serializer="raw", value_serializer="json")
    ticket_events = app.topic(f"{settings.app_id}-ticket-events", key_serializer="raw",
                              value_serializer="json", partitions=settings.partitions)
    customer_index = app.topic(f"{settings.app_id}-customer-index", key_serializer="raw",
                               value_serializer="json", partitions=settings.partitions)
    # Values are plain JSON dicts (no faust.Record type): the pure steps own their shape.
    tickets = app.Table("tickets", partitions=settings.partitions)
    indexes = app.Table("customer-index", partitions=settings.partitions)
    prefix = len(settings.topic_prefix)

    async def send_facts(items: list[dict], key: str) -> None:
        """One message for everything a step emitted (Faust's cost is per message)."""
        if not items:
            return
        for fact in items:
            metrics.facts.labels(fact["kind"]).inc()
        # ts lets the sink measure the delay from emission to insert.
        await facts.send(key=key.encode(), value={"ts": int(time.time() * 1000), "facts": items})

    @app.agent(sources, name="intake", concurrency=1)
    async def intake(stream):
        async for event in stream.events():
            message = event.message
            topic = message.topic[prefix:]
            routed = route(topic, event.value, message.partition, message.offset,
                           int(time.time() * 1000), settings.timezone)
            metrics.events.labels(topic, "dead_letter" if routed.target == "dlq" else "ok").inc()
            if routed.target == "dlq":
                metrics.dead_letters.labels(topic).inc()
                await dlq.send(key=routed.key.encode(), value=routed.value)
            elif routed.target == "ticket":
                await ticket_events.send(key=routed.key.encode(), value=routed.value)
            else:
                await send_facts([routed.value], routed.key)

    @app.agent(ticket_events, name="lifecycle", concurrency=1)
    async def lifecycle_agent(stream):
        async for rec in stream:
            ticket_id = rec["ticket_id"]
            state = tickets.get(ticket_id) or ticket.new_state()
            out, reports = lifecycle.apply(state, rec, calendar)
            if ticket.held(state):
                metrics.held.inc()
            tickets[ticket_id] = state
            await send_facts(out, ticket_id)
            for key, report in reports:
                await customer_index.send(key=key.encode(), value=report)

    @app.agent(customer_index, name="repeats", concurrency=1)
    async def repeats_agent(stream):
        async for event in stream.events():
            key = event.key.decode()
            index = indexes.get(key) or repeat.new_index()
            fresh = repeat.update(index, event.value)
            out = repeat.changes(index, resend_all=not fresh)
            indexes[key] = index
            await send_facts(out, key)

    return app
