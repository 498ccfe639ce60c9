"""Every Prometheus metric in one object, on an injected registry (tests build a fresh one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    __slots__ = (
        "registry", "events", "dead_letters", "facts", "held", "sink_rows", "sink_batches",
        "sink_failures", "sink_insert_seconds", "event_lag_seconds", "kpi_freshness_seconds",
        "consumer_lag", "inconsistent_tickets", "held_events",
    )

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # One counter per outcome: an event read by the worker is counted once in events_total
        # (ok: passed on, dead_letter: refused by the intake); a dead letter written, by any
        # step (the lifecycle's cap and budget, the sink's refused rows too), once in
        # dead_letters_total.
        self.events = Counter("servicescore_events_total", "Events read by the worker, by topic "
                              "and outcome (ok, dead_letter)", ["topic", "outcome"], registry=r)
        self.dead_letters = Counter(
            "servicescore_dead_letters_total", "Dead letters written to events-dlq, by source "
            "topic, the step that refused the message (intake, lifecycle, sink) and the kind of "
            "reason", ["topic", "step", "kind"], registry=r)
        self.facts = Counter("servicescore_facts_emitted_total", "Facts sent to the sink, by kind",
                             ["kind"], registry=r)
        self.held = Counter("servicescore_events_held_total", "Ticket events that arrived "
                            "before their ticket-opened (held until it arrives)", registry=r)
        self.sink_rows = Counter("servicescore_sink_rows_total", "Rows inserted, by table",
                                 ["table"], registry=r)
        self.sink_batches = Counter("servicescore_sink_batches_total", "Batches committed",
                                    registry=r)
        self.sink_failures = Counter("servicescore_sink_failures_total",
                                     "Failed inserts (retried with backoff)", registry=r)
        self.sink_insert_seconds = Histogram("servicescore_sink_insert_seconds",
                                             "Time to insert one batch", registry=r)
        self.event_lag_seconds = Histogram(
            "servicescore_sink_fact_age_seconds",
            "From the fact's emission by the stream processor to its insert in ClickHouse",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=r)
        self.kpi_freshness_seconds = Gauge(
            "servicescore_kpi_last_insert_timestamp_seconds",
            "Unix time of the last successful insert (how fresh the KPIs are)", registry=r)
        self.consumer_lag = Gauge(
            "servicescore_consumer_lag", "Messages not yet committed by a consumer group, per "
            "partition (refreshed every few seconds by the service)",
            ["group", "topic", "partition"], registry=r)
        self.inconsistent_tickets = Gauge(
            "servicescore_inconsistent_tickets", "Tickets whose facts disagree with their ticket "
            "row: a lost facts message (servicescore check; 0 when all is well)", registry=r)
        self.held_events = Gauge(
            "servicescore_held_events", "Events stored while waiting for their ticket-opened",
            registry=r)
