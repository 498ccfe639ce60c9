"""Composition of the long-running parts: worker (Faust agents), sink, HTTP API.

``run`` is all three: the worker in a child process (its own core), the sink and the API in the
process that holds the storage, one /metrics for both; ``worker`` and ``sink`` are the parts
alone, for scaling out (N workers in one consumer group, M sinks in another).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST

from consumers.clickhouse import ClickHouseWriter
from consumers.deadletters import DeadLetterProducer
from consumers.sink import Sink, SinkGroup
from schemas.events import DLQ_TOPIC, ROSTER_TOPIC
from schemas.facts import FACTS_TOPIC
from servicescore.app import api
from servicescore.app.reader import LocalReader
from servicescore.core.errors import ConfigError, ServicescoreError
from servicescore.core.logs import limit_repeats, silenced
from servicescore.core.metrics import SINK, WORKER, Metrics
from servicescore.core.settings import Settings, duration_ms, writable_folder
from servicescore.kafka import topics
from servicescore.kafka.client import Cluster, KafkaConnection, client_options
from servicescore.queries import kpis
from servicescore.storage.clickhouse import Storage, chdb_folder

log = logging.getLogger("servicescore.service")
HEALTH_TIMEOUT_S = 3.0
LAG_EVERY_S = 5.0
# The consistency check reads every ticket: often enough for an alert, rare enough to be cheap.
FACTS_EVERY_S = 30.0
CLOSE_EVERY_S = 600.0  # the grace is days long: a late close by minutes changes nothing


def open_storage(settings: Settings, migrate: bool = False) -> Storage:
    """The configured database. Opening runs no DDL and writes nothing, so the read commands
    work as a read-only ClickHouse user; ``migrate`` (the services, ``servicescore migrate``)
    brings the schema up to date first and refuses an edited, already-applied migration."""
    folder = chdb_folder(settings.dsn)
    if folder is not None:
        variable = "SERVICESCORE_CLICKHOUSE_DSN" if settings.clickhouse_dsn else \
            "SERVICESCORE_DATA_DIR"
        writable_folder(folder, variable)
    storage = Storage(settings.dsn, settings.database)
    if migrate:
        migrate_storage(storage, settings)
    return storage


def migrate_storage(storage: Storage, settings: Settings) -> list[str]:
    """Apply the migrations, then write the settings' KPI configuration (SLA targets and clock,
    review-360 weights) into ClickHouse, where every KPI reader takes it from. Returns the
    names of the migrations applied."""
    applied = storage.migrate()
    kpis.sync_targets(storage, settings.frt_targets_s, settings.aht_targets_s,
                      settings.onsite_targets_s, settings.sla_clock, settings.review_weights)
    return applied


def make_sink(settings: Settings, storage: Storage, metrics: Metrics) -> Sink:
    options = client_options(settings)

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **options, group_id=topics.sink_group(settings.app_id), enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=settings.sink_batch_rows,
            max_poll_interval_ms=600_000)

    def producer() -> AIOKafkaProducer:
        # acks=all: a dead letter counts as written only once every in-sync replica has it.
        return AIOKafkaProducer(**options, acks="all", linger_ms=5)

    dead_letters = DeadLetterProducer(producer, settings.topic(DLQ_TOPIC))
    logical = {settings.topic(t): t for t in (FACTS_TOPIC, DLQ_TOPIC, ROSTER_TOPIC)}
    return Sink(consumer, ClickHouseWriter(storage), metrics, logical, dead_letters,
                settings.sink_batch_rows, settings.sink_batch_seconds)


def make_sinks(settings: Settings, storage: Storage, metrics: Metrics) -> SinkGroup:
    """SERVICESCORE_SINK_CONSUMERS sinks of the one group, each with its own consumer and
    dead-letter producer."""
    return SinkGroup([make_sink(settings, storage, metrics)
                      for _ in range(settings.sink_consumers)])


def bind_api(settings: Settings) -> socket.socket:
    """The API's listening socket, bound before anything else starts: a taken port or an exposed
    address without a token is one line, not a traceback from inside a running worker."""
    host, port = settings.api_address
    if not loopback(host) and not settings.api_secret:
        raise ConfigError(f"SERVICESCORE_API: {settings.api} is reachable from other machines; "
                          "set SERVICESCORE_API_TOKEN or bind to 127.0.0.1")
    return _listen(host, port, f"the API on {settings.api}")


def bind_metrics(settings: Settings) -> socket.socket | None:
    """The worker's /metrics socket (SERVICESCORE_METRICS), bound before anything else starts.
    No token is asked on another address: /metrics holds counts, no customer data, and stays
    open on the API too. The default address is a convenience: when its port is taken (a
    second worker on the host) the worker runs without metrics and says so; an address given
    explicitly must work."""
    address = settings.metrics_address
    if address is None:
        return None
    try:
        return _listen(*address, f"metrics on {settings.metrics}")
    except ServicescoreError as exc:
        if "metrics" in settings.model_fields_set:
            raise
        log.warning("%s; the worker runs without /metrics (set SERVICESCORE_METRICS to serve "
                    "them elsewhere)", exc)
        return None


def _listen(host: str, port: int, what: str) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except OSError as exc:
        raise ServicescoreError(f"cannot serve {what}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart past TIME_WAIT
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServicescoreError(f"cannot serve {what}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


class Health:
    """/health: Kafka answers a metadata request, ClickHouse a ``SELECT 1``, the sink is not
    stuck failing its inserts. Each check is ``{"status": "ok"}`` or failing with a reason."""

    def __init__(self, settings: Settings, storage: Storage, sink=None,
                 timeout_s: float = HEALTH_TIMEOUT_S):
        self.settings, self.storage, self.sink = settings, storage, sink
        self.timeout_s = timeout_s

    async def __call__(self) -> dict:
        kafka, clickhouse = await asyncio.gather(self.kafka(), self.clickhouse())
        checks = {"kafka": kafka, "clickhouse": clickhouse}
        if self.sink is not None:
            checks["sink"] = self.sink_progress()
        fine = all(check["status"] == "ok" for check in checks.values())
        return {"status": "ok" if fine else "failing", "checks": checks}

    async def kafka(self) -> dict:
        try:
            await topics.check_reachable(Cluster.of(self.settings), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure means "not healthy"
            return _failing("kafka", f"no metadata from {self.settings.kafka_bootstrap} "
                            f"within {self.timeout_s:.0f}s", exc)
        return {"status": "ok"}

    async def clickhouse(self) -> dict:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.storage.rows, "SELECT 1"),
                                   self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure means "not healthy"
            return _failing("clickhouse", "SELECT 1 failed or took longer than "
                            f"{self.timeout_s:.0f}s", exc)
        return {"status": "ok"}

    def sink_progress(self) -> dict:
        # getattr: the sink gains these fields in its own change; until then nothing is known.
        now = time.monotonic()
        last, failing = (getattr(self.sink, "last_commit_at", None),
                         getattr(self.sink, "failing_since", None))
        check = {"status": "ok",
                 "last_commit_s_ago": None if last is None else round(now - last, 1)}
        if failing is not None:
            check.update(status="failing", reason=f"inserts failing for {now - failing:.0f}s")
        return check


def _failing(check: str, reason: str, exc: BaseException) -> dict:
    log.warning("health check %s failing: %s: %r", check, type(exc).__name__, str(exc)[:300])
    return {"status": "failing", "reason": reason}


async def watch_lag(settings: Settings, metrics: Metrics, every_s: float = LAG_EVERY_S) -> None:
    """Keep ``servicescore_consumer_lag`` current for the worker and the sink groups."""
    cluster = Cluster.of(settings)
    groups = topics.consumer_groups(cluster)
    while True:
        try:
            async with topics.offset_clients(cluster) as clients:
                while True:
                    await _measure_lag(clients, groups, metrics)
                    await asyncio.sleep(every_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - measuring must outlive a broker outage
            log.warning("consumer lag not measured: %s: %r", type(exc).__name__, str(exc)[:300])
            await asyncio.sleep(every_s)


async def _measure_lag(clients: tuple, groups: dict[str, list[str]], metrics: Metrics) -> None:
    for group, names in groups.items():
        parts = await topics.partition_progress(*clients, group, names)
        for tp, (done, end) in parts.items():
            metrics.consumer_lag.labels(group, tp.topic, str(tp.partition)).set(max(0, end - done))


async def watch_facts(reader: LocalReader, metrics: Metrics, every_s: float = FACTS_EVERY_S):
    """Keep the facts' own consistency and the held events on /metrics."""
    while True:
        try:
            found = await asyncio.to_thread(reader.check)
            held = await asyncio.to_thread(reader.held_summary)
            metrics.inconsistent_tickets.set(found["inconsistent_tickets"])
            metrics.held_events.set(held["held_events"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - measuring must outlive a storage outage
            log.warning("fact consistency not measured: %s: %r", type(exc).__name__,
                        str(exc)[:300])
        await asyncio.sleep(every_s)


async def watch_closes(reader: LocalReader, every_s: float = CLOSE_EVERY_S,
                       clock=lambda: int(time.time() * 1000)) -> None:
    """Close the previous month by itself once its grace has passed (appraisal.md)."""
    from appraisal.close import close_due

    while True:
        try:
            done = await asyncio.to_thread(close_due, reader.storage, reader.scheme(), clock())
            if done is not None:
                log.warning("closed %s by itself: %d engineer(s) frozen (close %s)",
                            done.period, done.engineers, done.close_id[:12])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed attempt is retried next time
            log.warning("the automatic close did not run: %s: %r", type(exc).__name__,
                        str(exc)[:300])
        await asyncio.sleep(every_s)


class ApiService:
    """The HTTP API and the lag gauge it publishes, started and stopped together."""

    def __init__(self, settings: Settings, storage: Storage, metrics: Metrics,
                 sock: socket.socket, sink=None):
        self.settings, self.metrics, self.sock = settings, metrics, sock
        self.reader = LocalReader(storage, settings)
        self.app = api.create_api(self.reader, metrics, settings.timezone,
                                  settings.api_secret, Health(settings, storage, sink))
        self.runner: object | None = None
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        # Attached here, after Faust has set logging up: a sink retrying or a broker outage
        # must not write the same line thousands of times.
        limit_repeats("servicescore.sink", "servicescore.service", "aiohttp.server")
        self.runner = await api.serve(self.app, self.sock)
        self.tasks = [asyncio.create_task(watch_lag(self.settings, self.metrics)),
                      asyncio.create_task(watch_facts(self.reader, self.metrics)),
                      asyncio.create_task(watch_closes(self.reader))]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.runner is not None:
            await self.runner.cleanup()


async def serve_metrics(metrics: Metrics, sock: socket.socket) -> web.AppRunner:
    """/metrics alone on ``sock``: the worker's endpoint (it serves no API)."""

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def run_sink(settings: Settings, with_api: bool = True, metrics: Metrics | None = None,
             start_worker: Callable[[], subprocess.Popen] | None = None) -> int:
    """The sink alone (and the read API, since it owns the storage), until SIGTERM/SIGINT; with
    ``start_worker`` (`run`), the worker started once the API's port, the storage and Kafka are
    known to be there (a mistake is one line, from this process alone), until it ends, and
    then it is ended too. The exit code: the worker's when it ended first, else 0."""
    metrics = metrics or Metrics(parts=SINK if with_api else ("sink",))
    sock = bind_api(settings) if with_api else None
    storage = open_storage(settings, migrate=True)
    with silenced("aiokafka"):  # an unreachable broker is our one line, not the client's
        topics.run(topics.create_topics(Cluster.of(settings)))
    worker = start_worker() if start_worker is not None else None
    ended: list[int] = []

    async def main():
        sink = make_sinks(settings, storage, metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sink.stop)
        service = ApiService(settings, storage, metrics, sock, sink) if sock else None
        if service is not None:
            await service.start()
        else:
            limit_repeats("servicescore.sink")
        watch = asyncio.create_task(watch_worker(worker, sink.stop, ended)) if worker else None
        try:
            await sink.run()
        finally:
            if watch is not None:
                watch.cancel()
            if service is not None:
                await service.stop()

    try:
        topics.run(main())
    finally:
        if worker is not None:
            end_worker(worker)
    return ended[0] if ended else 0


# `run`'s worker: its own process, so that it computes on its own core (a Python process
# computes on one core at a time, and the worker and the sink each keep one busy in a backfill).
def start_worker(metrics: Metrics) -> subprocess.Popen:
    """`servicescore worker` as a child of this process, with the same settings (the same
    environment and folder); its /metrics on a free loopback port, served with ours."""
    with socket.socket() as probe:  # a free port now; the worker binds it a moment later
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    child = subprocess.Popen([sys.executable, "-m", "servicescore.cli", "worker"],
                             env={**os.environ, "SERVICESCORE_METRICS": address,
                                  _PARENT: str(os.getpid())})
    metrics.sources.append(functools.partial(_scrape, f"http://{address}/metrics"))
    return child


# Set by `run` for its worker only (not a setting): the worker ends with that process.
_PARENT = "SERVICESCORE_RUN_PID"


def end_with_parent() -> bool:
    """In `run`'s worker, first thing: SIGTERM when `run` ends, even killed (Linux); done in
    the child itself, since a pre-exec hook in a process with threads may deadlock. Whether
    this is `run`'s worker."""
    parent = os.environ.pop(_PARENT, None)
    if parent is None:
        return False
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere `run` still ends it on every exit it sees
    if os.getppid() != int(parent):  # `run` was gone before the line above
        raise SystemExit(0)
    return True


def _scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""  # starting or gone: its part is missing from this scrape


async def watch_worker(worker: subprocess.Popen, stop: Callable[[], None],
                       ended: list[int]) -> None:
    """A worker that ends (a crash, a fail-stop) ends `run`: without it nothing is processed."""
    while worker.poll() is None:
        await asyncio.sleep(0.5)
    log.critical("the worker process ended (exit code %s): stopping", worker.returncode)
    ended.append(worker.returncode)
    stop()


def end_worker(worker: subprocess.Popen, timeout: float = 30) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def worker_config(settings: Settings):
    """The worker's plain arguments, from the settings."""
    from streams.app import WorkerConfig

    connection = KafkaConnection.of(settings)
    return WorkerConfig(settings.app_id, connection.faust(), connection.aiokafka(),
                        settings.data_dir,
                        settings.work_calendar(), settings.timezone, settings.partitions,
                        settings.topic_prefix, settings.crash_at,
                        duration_ms(settings.allowed_lateness))


def run_worker(settings: Settings) -> None:
    """The Faust worker (intake and lifecycle agents), /metrics on SERVICESCORE_METRICS."""
    import faust

    from streams.app import create_app

    # Under `run` the consumer lag is `run`'s to measure (it serves this worker's metrics too).
    parts = ("worker",) if end_with_parent() else WORKER
    metrics = Metrics(parts=parts)
    writable_folder(settings.data_dir, "SERVICESCORE_DATA_DIR")  # Faust keeps its tables there
    metrics_sock = bind_metrics(settings)
    with silenced("aiokafka"):  # an unreachable broker is our one line, not the client's
        topics.run(topics.create_topics(Cluster.of(settings)))
    app = create_app(worker_config(settings), metrics)
    if metrics_sock is not None:

        @app.task
        async def metrics_endpoint():
            limit_repeats("servicescore.service")  # after Faust has set logging up
            runner = await serve_metrics(metrics, metrics_sock)
            try:
                if "lag" in parts:
                    await watch_lag(settings, metrics)  # until the worker stops
                else:
                    await asyncio.Event().wait()  # until the worker stops
            finally:
                await runner.cleanup()
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True,
                          redirect_stdouts=False)
    # Faust's start-up spinner hides and shows the cursor with escape codes even when the
    # output is a file; `run` says itself when it serves (servicescore/app/startup.py).
    worker.spinner = None
    worker.execute_from_commandline()


def run_all(settings: Settings) -> int:
    """`run`: the worker in a process of its own (``start_worker``), the sink and the API in
    this one, which holds the storage (the embedded engine is one process per folder)."""
    writable_folder(settings.data_dir, "SERVICESCORE_DATA_DIR")  # the worker's tables too
    metrics = Metrics(parts=SINK)
    return run_sink(settings, metrics=metrics,
                    start_worker=functools.partial(start_worker, metrics))
