"""The HTTP API as a caller meets it: window parameters, 4xx for mistakes and 500 without
internals (one log line each, never a traceback), the bearer token, /health naming each check."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.facts import FACT_TABLES
from schemas.period import parse_instant
from servicescore.app import api
from servicescore.app.reader import HttpReader, LocalReader
from servicescore.app.service import Health, bind_api
from servicescore.core import logs
from servicescore.core.errors import ConfigError, ServicescoreError, StorageError
from servicescore.core.metrics import Metrics
from servicescore.core.settings import load_settings
from servicescore.dev.broker import free_port

TZ = "Asia/Shanghai"
RESOLVED = parse_instant("2026-06-15T10:00", TZ)
TOKEN = "s3cret-token"
LOGGERS = ("servicescore.api", "servicescore.api.http", "servicescore.service")


@pytest.fixture(autouse=True)
def fresh_log_filters():
    """Each test starts with empty repeat counters (the filters live on global loggers)."""

    def clear():
        for name in LOGGERS:
            logger = logging.getLogger(name)
            for f in [f for f in logger.filters if isinstance(f, (logs.Repeats, logs.OneLine))]:
                logger.removeFilter(f)

    clear()
    yield
    clear()


@pytest.fixture
def settings(tmp_path, kafka_bootstrap):
    return load_settings(kafka_bootstrap=kafka_bootstrap, data_dir=tmp_path, timezone=TZ)


@pytest.fixture
def one_resolution(storage):
    """A ticket resolved on 2026-06-15 by E-1."""
    ticket = {"ticket_id": "T-1", "customer_id": "C-1", "category": "printer", "priority": "P2",
              "channel": "phone", "opened_at": RESOLVED - 3_600_000, "status": "resolved",
              "episodes": 1, "episode_start": RESOLVED - 3_600_000, "escalations": 0}
    resolution = {"ticket_id": "T-1", "episode": 1, "engineer_id": "E-1",
                  "resolved_at": RESOLVED, "episode_start": RESOLVED - 3_600_000,
                  "aht_s": 3600.0, "escalated": False, "fcr": True, "reopened_7d": False,
                  "reopened_30d": False, "customer_id": "C-1", "category": "printer",
                  "priority": "P2"}
    for kind, fact in (("ticket", ticket), ("resolution", resolution)):
        spec = FACT_TABLES[kind]
        storage.insert(spec.table, [spec.row({**fact, "v": 1, "del": 0})], spec.columns)
    return storage


class FailingStorage:
    """A Storage whose every query fails the way a lost ClickHouse does."""

    def rows(self, *args, **kwargs):
        raise StorageError("ClickHouse: Code: 210. DB::NetException: Connection refused "
                           "(clickhouse:9000)")

    command = insert = rows


def ask(app_factory, method: str, path: str, **headers: str) -> tuple[int, object]:
    """One request to a fresh app (an aiohttp app serves one event loop)."""

    async def go():
        async with TestClient(TestServer(app_factory())) as client:
            response = await client.request(method, path, headers=headers)
            return response.status, await response.json(content_type=None)

    return asyncio.run(go())


def reads(storage, settings, token=None, health=None):
    kwargs = {"health": health} if health else {}
    return lambda: api.create_api(LocalReader(storage, settings), Metrics(), TZ, token,
                                  **kwargs)


def api_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("servicescore.api")]


# ------------------------------------------------------------------------------ windows


@pytest.mark.parametrize("query", ["from=2026&to=2027", "period=2026", "period=2026-Q2",
                                   "from=2026-06&to=2026-07", "period=2026-06",
                                   f"from_ms={RESOLVED}&to_ms={RESOLVED + 1}"])
def test_a_window_that_holds_the_resolution(one_resolution, settings, query):
    status, rows = ask(reads(one_resolution, settings), "GET", f"/tickets?{query}")
    assert (status, [r["ticket_id"] for r in rows]) == (200, ["T-1"])
    status, rows = ask(reads(one_resolution, settings), "GET", f"/kpis?{query}")
    assert (status, [(r["engineer_id"], r["resolutions"]) for r in rows]) == (200, [("E-1", 1)])


@pytest.mark.parametrize("query", ["from=2025&to=2026", "period=2026-Q3", "period=2027",
                                   f"from_ms={RESOLVED + 1}&to_ms={RESOLVED + 2}"])
def test_a_window_without_it(one_resolution, settings, query):
    assert ask(reads(one_resolution, settings), "GET", f"/tickets?{query}") == (200, [])


# ------------------------------------------------------------------------------ mistakes


@pytest.mark.parametrize(("path", "says"), [
    ("/kpis?from=²&to=2027", "'²'"),
    ("/kpis?from=1735689600000&to=2027", "bare number"),
    ("/kpis?from=0000-01&to=2027", "1900"),
    ("/kpis?from=2026", "period"),
    ("/kpis?period=2026&to=2027", "not both"),
    ("/kpis?period=2026-13", "bad period"),
    ("/kpis?from=2027&to=2026", "after"),
    ("/kpis?from_ms=abc&to_ms=1", "from_ms must be an integer"),
    ("/kpis?from_ms=1&to_ms=99999999999999999999999", "to_ms must be an integer"),
    ("/kpis?from_ms=1", "give to_ms"),
    ("/kpis?window=1y", "window must be one of"),
    ("/kpis?window=24h&period=2026", "give one of"),
    ("/kpis?engineer=E-1", "give one of: from/to/period"),
    ("/kpis?period=2026&group=dept", "group must be"),
    ("/kpis?form=2026&to=2027", "unknown parameter 'form'"),
    ("/live?verbose=1", "unknown parameter"),
    ("/tickets?period=2026&engineer=" + "E" * 500, "longer than 128"),
    ("/dlq?limit=0", "limit must be an integer from 1 to 10000"),
    ("/dlq?limit=10001", "limit must be"),
    ("/dlq?limit=-5", "limit must be"),
    ("/dlq?limit=1e3", "limit must be"),
])
def test_a_mistake_is_a_400_and_one_log_line(storage, settings, caplog, path, says):
    caplog.set_level(logging.INFO)
    status, body = ask(reads(storage, settings), "GET", path)
    assert status == 400 and says in body["error"], body
    records = api_records(caplog)
    assert len(records) == 1 and records[0].exc_info is None
    assert "\n" not in records[0].getMessage()


def test_unknown_route_and_method_are_json(storage, settings):
    assert ask(reads(storage, settings), "GET", "/nowhere")[0] == 404
    assert ask(reads(storage, settings), "POST", "/kpis")[0] == 405


@pytest.mark.parametrize("request_bytes", [
    b"GET /kpis?from=" + b"x" * 20_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /kpis?" + b"&".join(b"p%d=1" % i for i in range(3000)) + b" HTTP/1.1\r\n\r\n",
    b"GET /kpis HTTP/1.1\r\nHost: a\r\nnot a header\r\n\r\n",
    b"GET /kpis HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 20_000 + b"\r\n\r\n",
])
def test_a_malformed_request_is_a_400_without_a_traceback(storage, settings, caplog,
                                                          request_bytes):
    caplog.set_level(logging.INFO)

    async def go():
        sock = bind_api(load_settings(api=f"127.0.0.1:{free_port()}"))
        runner = await api.serve(reads(storage, settings)(), sock)
        try:
            reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            writer.write(request_bytes)
            await writer.drain()
            status_line = await reader.readline()
            writer.close()
            return status_line
        finally:
            await runner.cleanup()

    assert asyncio.run(go()).split()[1] == b"400"
    records = api_records(caplog)
    assert len(records) == 1 and records[0].exc_info is None and records[0].exc_text is None
    assert "\n" not in records[0].getMessage()


def test_a_failure_is_a_500_without_internals_and_one_log_line(settings, caplog):
    caplog.set_level(logging.INFO)
    status, body = ask(reads(FailingStorage(), settings), "GET", "/kpis?period=2026")
    assert status == 500
    assert "ClickHouse" not in body["error"] and "Error" not in body["error"]
    [record] = api_records(caplog)
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert "StorageError" in record.getMessage() and "\n" not in record.getMessage()


def test_the_same_failure_again_and_again_is_logged_once(settings, caplog):
    caplog.set_level(logging.INFO)
    make = reads(FailingStorage(), settings)

    async def go():
        async with TestClient(TestServer(make())) as client:
            return [(await client.get("/kpis?period=2026")).status for _ in range(50)]

    assert asyncio.run(go()) == [500] * 50
    assert len(api_records(caplog)) == 1


# ------------------------------------------------------------------------------ token


@pytest.mark.parametrize("path", ["/tickets?period=2026", "/dlq", "/kpis?period=2026"])
def test_reads_are_open_without_a_token(storage, settings, path):
    assert ask(reads(storage, settings), "GET", path) == (200, [])


def test_mutating_calls_need_a_configured_token(storage, settings):
    status, body = ask(reads(storage, settings), "POST", "/dlq/replay")
    assert status == 403 and "SERVICESCORE_API_TOKEN" in body["error"]


@pytest.mark.parametrize("path", ["/tickets?period=2026", "/dlq"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN,
                                           f"Bearer {TOKEN}x", "Bearer"])
def test_customer_data_needs_the_token_once_one_is_set(storage, settings, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    status, body = ask(reads(storage, settings, TOKEN), "GET", path, **headers)
    assert status == 401 and "bearer token" in body["error"]


@pytest.mark.parametrize("path", ["/tickets?period=2026", "/dlq"])
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(storage, settings, path, scheme):
    assert ask(reads(storage, settings, TOKEN), "GET", path,
               Authorization=f"{scheme} {TOKEN}") == (200, [])


def test_aggregates_stay_open_with_a_token(storage, settings):
    assert ask(reads(storage, settings, TOKEN), "GET", "/kpis?period=2026") == (200, [])


def test_a_mutating_call_with_a_wrong_token(storage, settings):
    status, _ = ask(reads(storage, settings, TOKEN), "POST", "/dlq/replay",
                    Authorization="Bearer guess")
    assert status == 401


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.0.2.1", "example.com"])
def test_an_exposed_api_needs_a_token(address):
    with pytest.raises(ConfigError, match="SERVICESCORE_API_TOKEN"):
        bind_api(load_settings(api=f"{address}:{free_port()}"))


@pytest.mark.parametrize("address", ["0.0.0.0", ""])
def test_an_exposed_api_with_a_token_starts(address):
    bind_api(load_settings(api=f"{address}:{free_port()}", api_token=TOKEN)).close()


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(address):
    bind_api(load_settings(api=f"{address}:{free_port()}")).close()


def test_http_reader_sends_the_token_and_says_a_refusal_once(one_resolution, settings):
    async def go():
        sock = bind_api(load_settings(api=f"127.0.0.1:{free_port()}"))
        runner = await api.serve(reads(one_resolution, settings, TOKEN)(), sock)
        base = f"127.0.0.1:{sock.getsockname()[1]}"
        try:
            lo, hi = parse_instant("2026", TZ), parse_instant("2027", TZ)
            allowed = await asyncio.to_thread(HttpReader(base, TOKEN).tickets, lo, hi)
            refusals = []
            for reader, call in ((HttpReader(base), lambda r: r.tickets(lo, hi)),
                                 (HttpReader(base, TOKEN), lambda r: r.dead_letters(0))):
                with pytest.raises(ServicescoreError) as caught:
                    await asyncio.to_thread(call, reader)
                refusals.append(str(caught.value))
            return allowed, refusals
        finally:
            await runner.cleanup()

    allowed, (unauthorized, bad_limit) = asyncio.run(go())
    assert [row["ticket_id"] for row in allowed] == ["T-1"]
    assert unauthorized.endswith("answered 401: missing or wrong bearer token")
    assert bad_limit.endswith("answered 400: limit must be an integer from 1 to 10000")
    assert all("servicescore" not in message and "{" not in message
               for message in (unauthorized, bad_limit))


# ------------------------------------------------------------------------------ health


def health_of(settings, storage, sink=None) -> tuple[int, dict]:
    return ask(reads(storage, settings, health=Health(settings, storage, sink, timeout_s=3)),
               "GET", "/health")


def test_health_when_everything_works(settings, storage):
    sink = SimpleNamespace(last_commit_at=time.monotonic(), failing_since=None)
    status, body = health_of(settings, storage, sink)
    assert status == 200 and body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "kafka": "ok", "clickhouse": "ok", "sink": "ok"}
    assert body["checks"]["sink"]["last_commit_s_ago"] >= 0


def test_health_when_kafka_is_down(settings, storage, caplog):
    down = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    status, body = health_of(down, storage)
    assert status == 503 and body["status"] == "failing"
    assert body["checks"]["kafka"]["status"] == "failing"
    assert "127.0.0.1:1" in body["checks"]["kafka"]["reason"]
    assert body["checks"]["clickhouse"] == {"status": "ok"}


def test_health_when_clickhouse_fails(settings):
    status, body = health_of(settings, FailingStorage())
    assert status == 503
    assert body["checks"]["clickhouse"]["status"] == "failing"
    assert "Connection refused" not in body["checks"]["clickhouse"]["reason"]
    assert body["checks"]["kafka"] == {"status": "ok"}


def test_health_when_the_sink_keeps_failing(settings, storage):
    sink = SimpleNamespace(last_commit_at=None, failing_since=time.monotonic() - 120)
    status, body = health_of(settings, storage, sink)
    assert status == 503
    assert body["checks"]["sink"]["status"] == "failing"
    assert "inserts failing for" in body["checks"]["sink"]["reason"]
    assert body["checks"]["sink"]["last_commit_s_ago"] is None


def test_health_with_a_sink_that_reports_nothing_yet(settings, storage):
    status, body = health_of(settings, storage, SimpleNamespace())
    assert status == 200 and body["checks"]["sink"]["status"] == "ok"


# ------------------------------------------------------------------------------ logs


def repeats_log(interval_s: float = 60):
    clock = SimpleNamespace(now=1000.0)
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger(f"test.repeats.{id(clock)}")
    logger.propagate = False
    logger.addHandler(Collect())
    logger.addFilter(logs.Repeats(interval_s, clock=lambda: clock.now))
    return logger, clock, seen


def test_repeated_lines_pass_once_per_interval_with_a_count():
    logger, clock, seen = repeats_log()
    for delay in range(1000):
        logger.warning("ClickHouse unavailable, retrying in %.1fs", delay)
        clock.now += 0.01  # 1000 lines in 10 s
    clock.now += 60
    logger.warning("ClickHouse unavailable, retrying in %.1fs", 30)
    assert seen == ["ClickHouse unavailable, retrying in 0.0s",
                    "ClickHouse unavailable, retrying in 30.0s (999 more like this in the last "
                    "60s not shown)"]


def test_different_lines_are_not_held_back():
    logger, _, seen = repeats_log()
    logger.warning("offset commit failed")
    logger.error("offset commit failed")
    logger.warning("skipped a message")
    assert seen == ["offset commit failed", "offset commit failed", "skipped a message"]
