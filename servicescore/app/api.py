"""The HTTP API of ``servicescore run``: a route per operation of servicescore/app/operations.py
(/kpis, /tickets, /backlog, /held, /check, /dlq, ...), and /live, /health, /metrics, and the live
board at / (servicescore/app/board.py).

Queries run in a thread (the embedded engine is synchronous). With SERVICESCORE_API_TOKEN set,
reads of customer data (/tickets, /dlq) and every mutating call need it as a bearer token;
without it, mutating calls are refused. A caller's mistake is a 400 naming it; anything else is
a 500 that shows no internals, and one log line.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST

from schemas.period import MAX_MS, MIN_MS, parse_window
from servicescore.app import board
from servicescore.app.operations import OPERATIONS, Reader
from servicescore.core.errors import ServicescoreError, StorageError
from servicescore.core.logs import OneLine, limit_repeats

log = logging.getLogger("servicescore.api")
# aiohttp's own log (malformed requests it refuses before any handler runs)
http_log = logging.getLogger("servicescore.api.http")
ROLLING = {"24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000}
MAX_LIMIT = 10_000
MAX_TEXT = 128  # ids follow the events' id rule (1..128 characters)
MAX_BODY = 256 * 1024  # a scheme file is a few KiB
WINDOW_FORMS = {"from/to/period": ("from", "to", "period"),
                "window=24h|7d|30d": ("window",), "from_ms/to_ms": ("from_ms", "to_ms")}
WINDOW = tuple(name for names in WINDOW_FORMS.values() for name in names)


class BadRequest(ServicescoreError):
    """The caller's mistake: a 400 with this message."""


async def _all_fine() -> dict:
    return {"status": "ok", "checks": {}}


def create_api(reader: Reader, metrics, timezone: str, token: str | None = None,
               health: Callable[[], Awaitable[dict]] = _all_fine) -> web.Application:
    routes = web.RouteTableDef()
    guard = Guard(token)

    @routes.get("/health")
    async def health_view(request):
        query(request)
        body = await health()
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    @routes.get("/metrics")
    async def metrics_view(request):
        # In a thread: under `run` it asks the worker process for its part.
        return web.Response(body=await asyncio.to_thread(metrics.exposition),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    @routes.get("/live")
    async def live_view(request):
        query(request)
        now = int(time.time() * 1000)
        backlog = await asyncio.to_thread(reader.backlog)
        rolling = await asyncio.to_thread(reader.rolling_kpis, now, ROLLING)
        held = await asyncio.to_thread(reader.held_summary)
        return web.json_response({"now_ms": now, "backlog": backlog, "held": held,
                                  "rolling": rolling})

    for name, operation in OPERATIONS.items():
        routes.route(operation.method, operation.path)(answer(reader, name, guard, timezone))
    board_routes(routes, timezone, token)
    limit_repeats(log.name)
    app = web.Application(middlewares=[errors])
    app.add_routes(routes)
    return app


# The operations the board's script calls (servicescore/app/static/board.js).
BOARD_READS = ("kpis", "backlog", "daily_kpis", "latest_appraisals")


def board_routes(routes: web.RouteTableDef, timezone: str, token: str | None) -> None:
    """The live board: the page at /, the KPI registry its script reads names, units and
    formats from, and its static files. The page is open; the data it shows is asked from the
    operations' own routes, each with its own access."""
    # The page asks for the token before calling a route that needs it, instead of being
    # refused (a refusal is an error in the browser's console).
    needs_token = {OPERATIONS[name].path: bool(token) and OPERATIONS[name].access != "open"
                   for name in BOARD_READS}

    @routes.get("/")
    async def board_view(request: web.Request) -> web.Response:
        q = query(request, "lang", "refresh", *WINDOW)
        chosen = ({k: v for k, v in q.items() if k in WINDOW}
                  or {"window": board.DEFAULT_WINDOW})
        bounds = window(chosen, timezone)
        lang = board.language(q.get("lang"), request.headers.get("Accept-Language", ""))
        refresh = integer(q, "refresh", 1, 3600) if "refresh" in q else board.REFRESH_S
        html = board.page(lang, refresh, chosen, None if "window" in chosen else bounds,
                          timezone, needs_token)
        return web.Response(text=html, content_type="text/html",
                            headers={**board.HEADERS, "Content-Language": lang})

    @routes.get("/kpis/registry")
    async def registry_view(request: web.Request) -> web.Response:
        q = query(request, "lang")
        lang = board.language(q.get("lang"), request.headers.get("Accept-Language", ""))
        return web.json_response(board.registry(lang))

    @routes.get("/static/{name}")
    async def static_view(request: web.Request) -> web.Response:
        query(request, "v")  # v: the file's version in the page's links (a new one, a new URL)
        found = board.asset(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(reason="no such file")
        body, kind, version = found
        headers = {"ETag": f'"{version}"', "Cache-Control": "no-cache",
                   "X-Content-Type-Options": "nosniff"}
        if request.headers.get("If-None-Match") == headers["ETag"]:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=kind, charset="utf-8", headers=headers)


def answer(reader: Reader, name: str, guard: Guard, timezone: str):
    """The route of one operation (servicescore/app/operations.py): its access checked, its
    parameters parsed and bounded, the reader's answer as JSON."""
    operation = OPERATIONS[name]
    named = [p for p in operation.params if p not in ("from_ms", "to_ms", operation.body)]
    allowed = named + list(WINDOW if operation.windowed else ())

    async def view(request: web.Request) -> web.Response:
        if operation.access == "mutate":
            guard.mutate(request)
        elif operation.access == "customer":
            guard.read(request)
        q = query(request, *allowed)
        args = {p: PARAMETERS[p](q) for p in named}
        if operation.body:
            args[operation.body] = await body_text(request)
        if operation.windowed:
            args["from_ms"], args["to_ms"] = window(q, timezone)
        result = await asyncio.to_thread(getattr(reader, name), **args)
        return web.json_response(result)
    return view


def group(q: dict[str, str]) -> str:
    value = q.get("group", "engineer")
    if value not in ("engineer", "team"):
        raise BadRequest("group must be engineer or team")
    return value


class Guard:
    """The bearer token (scheme case-insensitive, RFC 7235) of SERVICESCORE_API_TOKEN."""

    def __init__(self, token: str | None):
        self.token = token.encode() if token else None

    def read(self, request: web.Request) -> None:
        """Reads of customer data: open without a token configured, else they need it."""
        if self.token:
            self._check(request)

    def mutate(self, request: web.Request) -> None:
        if not self.token:
            raise web.HTTPForbidden(reason="mutating calls are disabled: "
                                           "set SERVICESCORE_API_TOKEN")
        self._check(request)

    def _check(self, request: web.Request) -> None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("utf-8", "replace"), self.token):
            raise web.HTTPUnauthorized(reason="missing or wrong bearer token",
                                       headers={"WWW-Authenticate": "Bearer"})


def query(request: web.Request, *allowed: str) -> dict[str, str]:
    """The query parameters, each known to the route and of a sane length."""
    q = request.query
    for name, value in q.items():
        if name not in allowed:
            raise BadRequest(f"unknown parameter {name[:40]!r}"
                             + (f" (use {', '.join(allowed)})" if allowed else ""))
        if len(value) > MAX_TEXT:
            raise BadRequest(f"parameter {name} is longer than {MAX_TEXT} characters")
    return {name: q[name] for name in q}


def window(q: dict[str, str], timezone: str) -> tuple[int, int]:
    """[from, to) from exactly one form: window=24h|7d|30d, from_ms/to_ms (the CLI's own
    reader), or from/to/period as on the command line."""
    forms = [form for form, names in WINDOW_FORMS.items() if any(n in q for n in names)]
    if len(forms) != 1:
        raise BadRequest(f"give one of: {'; '.join(WINDOW_FORMS)}")
    if forms == ["window=24h|7d|30d"]:
        return rolling(q["window"])
    if forms == ["from_ms/to_ms"]:
        lo, hi = (integer(q, "from_ms", MIN_MS, MAX_MS), integer(q, "to_ms", MIN_MS, MAX_MS))
        if hi <= lo:
            raise BadRequest("to_ms must be after from_ms")
        return lo, hi
    return parse_window(q.get("from"), q.get("to"), q.get("period"), timezone, flag="")


def rolling(name: str) -> tuple[int, int]:
    if name not in ROLLING:
        raise BadRequest(f"window must be one of {', '.join(ROLLING)}")
    now = int(time.time() * 1000)
    return now - ROLLING[name], now


def integer(q: dict[str, str], name: str, low: int, high: int) -> int:
    text = q.get(name)
    if text is None:
        raise BadRequest(f"give {name}")
    if not (text.isascii() and text.removeprefix("-").isdigit()) or not low <= int(text) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(text)


def limit(q: dict[str, str]) -> int:
    return integer(q, "limit", 1, MAX_LIMIT) if "limit" in q else 100


def required(name: str):
    def read(q: dict[str, str]) -> str:
        if not q.get(name):
            raise BadRequest(f"give {name}")
        return q[name]
    return read


def flag(name: str):
    def read(q: dict[str, str]) -> bool:
        value = q.get(name, "false").lower()
        if value not in ("true", "false", "1", "0"):
            raise BadRequest(f"{name} must be true or false")
        return value in ("true", "1")
    return read


async def body_text(request: web.Request) -> str | None:
    """A request body of at most MAX_BODY bytes as text (a scheme file); None when empty."""
    if request.content_length and request.content_length > MAX_BODY:
        raise BadRequest(f"the body is larger than {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise BadRequest(f"the body is larger than {MAX_BODY} bytes")
    try:
        return raw.decode("utf-8") if raw else None
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None


# How each parameter of an operation is read from the query (the window has its own forms).
PARAMETERS = {"engineer": lambda q: q.get("engineer"), "team": lambda q: q.get("team"),
              "topic": lambda q: q.get("topic"), "group": group, "limit": limit,
              "period": required("period"), "early": flag("early"),
              "with_superseded": flag("with_superseded"),
              "supersede": lambda q: q.get("supersede")}


@web.middleware
async def errors(request: web.Request, handler) -> web.StreamResponse:
    """Every error as JSON ``{"error": ...}``; internals stay in the log, one line each."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return refused(request, exc.status, exc.reason, exc.headers)
    except StorageError as exc:
        return failed(request, exc)
    except ServicescoreError as exc:
        return refused(request, 400, str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must not show its internals to a caller
        return failed(request, exc)


def refused(request: web.Request, status: int, message: str, headers=None) -> web.Response:
    # %r keeps a caller's newlines from splitting the line
    log.warning("refused %s %r: %d %r", request.method, request.path[:100], status, message)
    extra = {k: v for k, v in (headers or {}).items() if k in ("WWW-Authenticate", "Allow")}
    return web.json_response({"error": message}, status=status, headers=extra)


def failed(request: web.Request, exc: Exception) -> web.Response:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    log.error("%s %r failed: %s: %r", request.method, request.path[:100],
              type(exc).__name__, first)
    log.debug("traceback of the failure above", exc_info=exc)
    return web.json_response({"error": "internal error (the service log has the details)"},
                             status=500)


async def serve(app: web.Application, sock) -> web.AppRunner:
    """Serve ``app`` on an already bound socket (see service.bind_api: binding first turns a
    taken port into one line before anything else starts)."""
    if not any(isinstance(f, OneLine) for f in http_log.filters):
        http_log.addFilter(OneLine(mistakes=(HttpProcessingError,)))  # before Repeats sees it
    limit_repeats(http_log.name)
    runner = web.AppRunner(app, access_log=None, logger=http_log)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner
