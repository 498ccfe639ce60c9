"""Composition of the long-running parts: worker (Faust agents), sink, HTTP API.

``run`` is all three in one process; ``worker`` and ``sink`` are the parts alone, for scaling
out (N workers in one consumer group, M sinks in another).
"""

from __future__ import annotations

import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from consumers.clickhouse import ClickHouseWriter
from consumers.deadletters import DeadLetterProducer
from consumers.sink import Sink
from schemas.events import DLQ_TOPIC, ROSTER_TOPIC
from schemas.facts import FACTS_TOPIC
from servicescore import api, topics
from servicescore.metrics import Metrics
from servicescore.reader import LocalReader
from servicescore.settings import Settings
from servicescore.storage import Storage


def open_storage(settings: Settings, migrate: bool = True) -> Storage:
    storage = Storage(settings.dsn, settings.clickhouse_database)
    if migrate:
        storage.migrate()
    return storage


def make_sink(settings: Settings, storage: Storage, metrics: Metrics) -> Sink:
    options = topics.client_options(settings)

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **options, group_id=f"{settings.app_id}-sink", enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=settings.sink_batch_rows,
            max_poll_interval_ms=600_000)

    def producer() -> AIOKafkaProducer:
        # acks=all: a dead letter counts as written only once every in-sync replica has it.
        return AIOKafkaProducer(**options, acks="all", linger_ms=5)

    dead_letters = DeadLetterProducer(producer, settings.topic(DLQ_TOPIC))
    logical = {settings.topic(t): t for t in (FACTS_TOPIC, DLQ_TOPIC, ROSTER_TOPIC)}
    return Sink(consumer, ClickHouseWriter(storage), metrics, logical, dead_letters,
                settings.sink_batch_rows, settings.sink_batch_seconds)


async def _serve_api(settings: Settings, storage: Storage, metrics: Metrics):
    reader = LocalReader(storage, settings)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return await api.serve(api.create_api(reader, metrics, settings.timezone, token),
                           settings.api)


def run_sink(settings: Settings, with_api: bool = True) -> None:
    """The sink alone (and the read API, since it owns the storage), until SIGTERM/SIGINT."""
    metrics = Metrics()
    storage = open_storage(settings)
    topics.run(topics.create_topics(settings))

    async def main():
        sink = make_sink(settings, storage, metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sink.stop)
        runner = await _serve_api(settings, storage, metrics) if with_api else None
        try:
            await sink.run()
        finally:
            if runner is not None:
                await runner.cleanup()

    topics.run(main())


def run_worker(settings: Settings, with_sink: bool = False) -> None:
    """The Faust worker (intake, lifecycle, repeats agents); with the sink and API for ``run``."""
    import faust

    from streams.app import create_app

    metrics = Metrics()
    topics.run(topics.create_topics(settings))
    app = create_app(settings, metrics)
    if with_sink:
        storage = open_storage(settings)
        sink = make_sink(settings, storage, metrics)

        @app.task
        async def sink_and_api():
            runner = await _serve_api(settings, storage, metrics)
            try:
                await sink.run()
            finally:
                await runner.cleanup()

        @app.on_before_shutdown.connect
        async def stop_sink(app, **kwargs):
            sink.stop()
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True,
                          redirect_stdouts=False)
    worker.execute_from_commandline()
