"""The service's operations are defined once (servicescore/app/operations.py): the local reader
answers each with the parameters the table names, and the HTTP reader, asking a running API,
gets the same answers."""

from __future__ import annotations

import asyncio
import inspect

from schemas.period import parse_instant
from servicescore.app import api
from servicescore.app.operations import OPERATIONS
from servicescore.app.reader import HttpReader, LocalReader
from servicescore.app.service import bind_api
from servicescore.core.metrics import Metrics
from servicescore.core.settings import load_settings
from servicescore.dev.broker import free_port
from tests.test_api import TZ, one_resolution, settings  # noqa: F401 - fixtures

TOKEN = "operations-token"
YEAR = (parse_instant("2026", TZ), parse_instant("2027", TZ))
MONTH = (parse_instant("2026-06", TZ), parse_instant("2026-07", TZ))  # per-day reads: <= 92 days
# One call per read operation (replay changes things: it is covered by tests/test_service.py).
CALLS = {"kpis": YEAR, "tickets": YEAR, "backlog": (), "held": (5,), "held_summary": (),
         "check": (), "dead_letters": (5,), "appraisals": ("2026-06", True),
         "adjustments": ("2026-06",), "score": ("2026-06",), "report_data": ("2026-06",),
         "daily_kpis": MONTH, "latest_appraisals": ()}


def test_every_operation_is_a_local_reader_method_with_those_parameters():
    for name, operation in OPERATIONS.items():
        method = getattr(LocalReader, name)
        assert tuple(inspect.signature(method).parameters)[1:] == operation.params, name


def test_the_http_reader_answers_every_read_as_the_local_one(one_resolution, settings):  # noqa: F811
    local = LocalReader(one_resolution, settings)
    assert set(CALLS) == {n for n, o in OPERATIONS.items() if o.access != "mutate"}

    async def ask_all() -> dict:
        sock = bind_api(load_settings(api=f"127.0.0.1:{free_port()}"))
        app = api.create_api(local, Metrics(), TZ, TOKEN)
        runner = await api.serve(app, sock)
        remote = HttpReader(f"127.0.0.1:{sock.getsockname()[1]}", TOKEN)
        try:
            return {name: await asyncio.to_thread(getattr(remote, name), *args)
                    for name, args in CALLS.items()}
        finally:
            await runner.cleanup()

    remote = asyncio.run(ask_all())
    for name, args in CALLS.items():
        want = getattr(local, name)(*args)
        if name in ("backlog", "held", "held_summary"):  # ages move with the clock
            assert _without_ages(remote[name]) == _without_ages(want), name
        else:
            assert remote[name] == want, name
    assert [row["ticket_id"] for row in remote["tickets"]] == ["T-1"]


def _without_ages(value):
    if isinstance(value, list):
        return [_without_ages(v) for v in value]
    return {k: v for k, v in value.items() if not k.endswith("age_s")}


def test_a_period_is_closed_through_the_api_with_the_token_only(one_resolution, settings):  # noqa: F811
    from servicescore.core.errors import ServicescoreError

    local = LocalReader(one_resolution, settings)

    async def close_remotely() -> tuple[str, dict]:
        sock = bind_api(load_settings(api=f"127.0.0.1:{free_port()}"))
        runner = await api.serve(api.create_api(local, Metrics(), TZ, TOKEN), sock)
        base = f"127.0.0.1:{sock.getsockname()[1]}"
        try:
            try:
                await asyncio.to_thread(HttpReader(base, "guess").close, "2026-06", True)
                refused = ""
            except ServicescoreError as exc:
                refused = str(exc)
            done = await asyncio.to_thread(HttpReader(base, TOKEN).close, "2026-06", True)
            return refused, done
        finally:
            await runner.cleanup()

    refused, done = asyncio.run(close_remotely())
    assert refused.endswith("answered 401: missing or wrong bearer token")
    assert done["period"] == "2026-06" and done["engineers"] == 1
    (row,) = local.appraisals("2026-06")
    assert (row["engineer_id"], row["close_id"], row["status"]) == ("E-1", done["close_id"],
                                                                    "frozen")
