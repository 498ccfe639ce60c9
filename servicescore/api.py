"""The HTTP API of ``servicescore run``: /kpis, /tickets, /live, /dlq, /health, /metrics.

Queries run in a thread (the embedded engine is synchronous); mutating calls need the bearer
token of SERVICESCORE_API_TOKEN.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from servicescore.errors import ServicescoreError
from servicescore.period import parse_instant
from servicescore.reader import LocalReader

ROLLING = {"24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000}


def create_api(reader: LocalReader, metrics, timezone: str, token: str | None = None,
               health=lambda: {"status": "ok"}) -> web.Application:
    routes = web.RouteTableDef()

    def authorize(request: web.Request) -> None:
        """Mutating calls need SERVICESCORE_API_TOKEN as a bearer token."""
        if not token:
            raise web.HTTPForbidden(text="mutating calls are disabled: set SERVICESCORE_API_TOKEN")
        if not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
            raise web.HTTPUnauthorized(text="missing or wrong bearer token")

    def window(request: web.Request) -> tuple[int, int]:
        q = request.query
        if "window" in q:
            if q["window"] not in ROLLING:
                raise ServicescoreError(f"window must be one of {', '.join(ROLLING)}")
            now = int(time.time() * 1000)
            return now - ROLLING[q["window"]], now
        if "from_ms" in q and "to_ms" in q:
            return int(q["from_ms"]), int(q["to_ms"])
        if "from" in q and "to" in q:
            return parse_instant(q["from"], timezone), parse_instant(q["to"], timezone)
        raise ServicescoreError("give from and to (or window=24h|7d|30d)")

    @routes.get("/health")
    async def health_view(request):
        return web.json_response(health())

    @routes.get("/metrics")
    async def metrics_view(request):
        return web.Response(body=generate_latest(metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    @routes.get("/kpis")
    async def kpis_view(request):
        lo, hi = window(request)
        q = request.query
        group = q.get("group", "engineer")
        if group not in ("engineer", "team"):
            raise ServicescoreError("group must be engineer or team")
        rows = await asyncio.to_thread(reader.kpis, lo, hi, q.get("engineer"), q.get("team"),
                                       group)
        return web.json_response(rows)

    @routes.get("/tickets")
    async def tickets_view(request):
        lo, hi = window(request)
        q = request.query
        rows = await asyncio.to_thread(reader.tickets, lo, hi, q.get("engineer"), q.get("team"))
        return web.json_response(rows)

    @routes.get("/live")
    async def live_view(request):
        now = int(time.time() * 1000)
        backlog = await asyncio.to_thread(reader.backlog)
        rolling = {}
        for name, span in ROLLING.items():
            rolling[name] = await asyncio.to_thread(reader.kpis, now - span, now)
        return web.json_response({"now_ms": now, "backlog": backlog, "rolling": rolling})

    @routes.get("/dlq")
    async def dlq_view(request):
        limit = int(request.query.get("limit", 100))
        rows = await asyncio.to_thread(reader.dead_letters, limit, request.query.get("topic"))
        return web.json_response(rows)

    @routes.post("/dlq/replay")
    async def dlq_replay_view(request):
        authorize(request)
        limit = int(request.query.get("limit", 100))
        sent = await asyncio.to_thread(reader.replay_dead_letters, limit,
                                       request.query.get("topic"))
        return web.json_response({"republished": sent})

    @web.middleware
    async def errors(request, handler):
        try:
            return await handler(request)
        except (ServicescoreError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)

    app = web.Application(middlewares=[errors])
    app.add_routes(routes)
    return app


async def serve(app: web.Application, address: str) -> web.AppRunner:
    host, _, port = address.rpartition(":")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    return runner
