"""Every Prometheus metric in one object, on an injected registry (tests build a fresh one).

Who serves what: ``run`` serves every metric on its API's /metrics; ``sink`` the sink's, the lag
and the storage gauges on its API's /metrics; ``worker`` the agents' and the lag on
SERVICESCORE_METRICS (it has no API). A process registers only the parts it measures
(``parts``): a worker exporting "0 held events" or "last insert at 1970" would state what it
cannot know, and a dashboard summing over instances would believe it. The agents' measures are
taken in streams/app.py, the sink's in consumers/sink.py, the gauges by the service's watchers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

# worker: the agents; sink: the ClickHouse sink; lag: the consumer-lag watcher; storage: the
# gauges read from ClickHouse (held rows, inconsistent tickets).
PARTS = ("worker", "sink", "lag", "storage")
WORKER = ("worker", "lag")
SINK = ("sink", "lag", "storage")


class Metrics:
    __slots__ = (
        "registry", "events", "dead_letters", "facts", "held", "sink_rows", "sink_batches",
        "sink_failures", "sink_insert_seconds", "event_lag_seconds", "kpi_freshness_seconds",
        "consumer_lag", "inconsistent_tickets", "held_events", "event_to_fact_seconds",
        "newest_event_seconds", "ticket_state_bytes", "tickets_retired", "sources",
    )

    def __init__(self, registry: CollectorRegistry | None = None,
                 parts: Collection[str] = PARTS):
        self.registry = registry or CollectorRegistry()
        # Other processes' exposition texts served with this one's (`run`'s worker process).
        self.sources: list[Callable[[], str]] = []
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown metrics part(s): {', '.join(sorted(unknown))}")

        def of(*owners: str) -> CollectorRegistry | None:
            """The registry when this process has one of the owners; else the metric still
            counts (callers need not care) but is not served."""
            return self.registry if set(owners) & set(parts) else None

        # One counter per outcome: an event read by the worker is counted once in events_total
        # (ok: passed on, dead_letter: refused by the intake); a dead letter written, by any
        # step (the lifecycle's cap and budget, the sink's refused rows too), once in
        # dead_letters_total.
        self.events = Counter("servicescore_events_total", "Events read by the worker, by topic "
                              "and outcome (ok, dead_letter)", ["topic", "outcome"],
                              registry=of("worker"))
        self.dead_letters = Counter(
            "servicescore_dead_letters_total", "Dead letters written to events-dlq, by source "
            "topic, the step that refused the message (intake, lifecycle, sink) and the kind of "
            "reason", ["topic", "step", "kind"], registry=of("worker", "sink"))
        self.facts = Counter("servicescore_facts_emitted_total", "Facts sent to the sink, by kind",
                             ["kind"], registry=of("worker"))
        self.held = Counter("servicescore_events_held_total", "Ticket events that arrived "
                            "before their ticket-opened (held until it arrives)",
                            registry=of("worker"))
        # From the event's Kafka timestamp (its producer's send time, unless the producer set
        # one), not its occurred_at: a late or replayed event is not a slow pipeline. Observed
        # once per event whose step emitted facts; with servicescore_sink_fact_age_seconds it
        # spans event -> fact -> row.
        self.event_to_fact_seconds = Histogram(
            "servicescore_event_to_fact_seconds", "From an event's Kafka timestamp to its facts "
            "handed to the producer by the worker",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=of("worker"))
        self.newest_event_seconds = Gauge(
            "servicescore_newest_event_timestamp_seconds", "The event time of the spec's "
            "allowed lateness as this worker's lifecycle sees it: the newest occurred_at "
            "processed, as a watermark over the inputs (streams/retirement.py; times over a day "
            "ahead of the wall clock ignored)",
            registry=of("worker"))
        self.ticket_state_bytes = Histogram(
            "servicescore_ticket_state_bytes", "Size of each ticket state written to the "
            "ticket-state table (the budget is 768 KiB)",
            buckets=(256, 1024, 4096, 16384, 65536, 262144, 524288, 786432),
            registry=of("worker"))
        self.tickets_retired = Counter(
            "servicescore_tickets_retired_total", "Ticket states retired by event time "
            "(allowed lateness), by whether the ticket had been opened or was still held",
            ["outcome"], registry=of("worker"))

        self.sink_rows = Counter("servicescore_sink_rows_total", "Rows inserted, by table",
                                 ["table"], registry=of("sink"))
        self.sink_batches = Counter("servicescore_sink_batches_total", "Batches committed",
                                    registry=of("sink"))
        # Every failed attempt is followed by a retry of the same batch after a backoff, so
        # this counts the insert failures and the retries alike.
        self.sink_failures = Counter("servicescore_sink_failures_total",
                                     "Failed batch inserts, each retried after a backoff",
                                     registry=of("sink"))
        self.sink_insert_seconds = Histogram("servicescore_sink_insert_seconds",
                                             "Time to insert one batch", registry=of("sink"))
        self.event_lag_seconds = Histogram(
            "servicescore_sink_fact_age_seconds",
            "From the fact's emission by the stream processor to its insert in ClickHouse",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=of("sink"))
        self.kpi_freshness_seconds = Gauge(
            "servicescore_kpi_last_insert_timestamp_seconds",
            "Unix time of the last successful insert (how fresh the KPIs are)",
            registry=of("sink"))

        self.consumer_lag = Gauge(
            "servicescore_consumer_lag", "Messages not yet committed by a consumer group, per "
            "partition (refreshed every few seconds by the service)",
            ["group", "topic", "partition"], registry=of("lag"))
        self.inconsistent_tickets = Gauge(
            "servicescore_inconsistent_tickets", "Tickets whose facts disagree with their ticket "
            "row: a lost facts message (servicescore check; 0 when all is well)",
            registry=of("storage"))
        self.held_events = Gauge(
            "servicescore_held_events", "Events stored while waiting for their ticket-opened",
            registry=of("storage"))

    def exposition(self) -> bytes:
        """The text /metrics serves: this process's metrics and its ``sources``' in one
        exposition, a family once (its samples from every process), a series once (this
        process's when both measure it, as the consumer lag)."""
        own = generate_latest(self.registry)
        if not self.sources:
            return own
        # Both sides parsed alike: the parser makes a counter's _created lines a family of
        # their own, which registry.collect() does not.
        families = {f.name: f for f in text_string_to_metric_families(own.decode())}
        seen = {(s.name, tuple(sorted(s.labels.items())))
                for family in families.values() for s in family.samples}
        for source in self.sources:
            for family in text_string_to_metric_families(source()):
                mine = families.setdefault(family.name, family)
                for sample in family.samples if mine is not family else ():
                    if (sample.name, tuple(sorted(sample.labels.items()))) not in seen:
                        mine.samples.append(sample)
        merged = CollectorRegistry(auto_describe=False)
        merged.register(_Families(list(families.values())))
        return generate_latest(merged)


class _Families:
    """A collector of families already collected (``Metrics.exposition``)."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return iter(self.families)
