"""The live board at / (servicescore/app/board.py) as a person meets it: `servicescore run` on the
real Kafka and the embedded ClickHouse, simulated traffic, and the page open in headless Chromium
(Debian's chromium, driven over the DevTools protocol): no console error, nothing loaded from
anywhere but the service, the tables equal to `servicescore kpis` and `servicescore live`, the
charts to each day's KPIs, the grades to `servicescore appraisals` once the token is given, new
values after new events without a reload, Chinese when the browser asks for it.

Also, without Kafka: the language rule, the KPI registry route, the page's headers and files,
the per-day KPIs equal to each day's `kpis.compute`, the newest closed month's grades, and the
installed copy shipping the template and the script."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import subprocess
import threading
import time
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from appraisal.close import close_period
from appraisal.report import EN as REPORT_EN
from appraisal.report import ZH as REPORT_ZH
from appraisal.report import kpi_value
from appraisal.scheme import default_scheme
from schemas.errors import ServicescoreError
from schemas.kpis import FIELDS, REGISTRY
from schemas.period import parse_instant, parse_period
from servicescore.app import api, board, roster
from servicescore.app.reader import LocalReader
from servicescore.core.metrics import Metrics
from servicescore.core.settings import load_settings
from servicescore.dev.simulate import simulate, write_jsonl, write_roster_csv
from servicescore.queries import kpis
from tests.plugins.pipeline import Pipeline
from tests.test_close import facts_from, store
from tests.test_packaging import fresh, installed  # noqa: F401 - the built package's fixture

DAY_MS = 86_400_000
TZ = "Asia/Shanghai"
TOKEN = "board-token"
WAIT_S = 120  # the longest wait for the page to show something (never asserted as a time)


# ---------------------------------------------------------------- language

@pytest.mark.parametrize(("asked", "accept", "chosen"), [
    ("en", "zh-CN,zh;q=0.9", "en"),
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    (None, "en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    (None, "fr-FR, en;q=0.5, zh;q=0.7", "zh"),  # by quality, not by position
    (None, "zh;q=0, en;q=0.1", "en"),  # q=0: not acceptable
    (None, "fr, de", "zh"),
    (None, "", "zh"),
    (None, "en;q=bad, zh;q=0.2", "zh"),
])
def test_the_language_is_the_query_else_the_browsers_else_chinese(asked, accept, chosen):
    assert board.language(asked, accept) == chosen


def test_an_unknown_language_is_refused():
    with pytest.raises(ServicescoreError, match="lang must be one of zh, en"):
        board.language("fr")


# ---------------------------------------------------------------- routes without data

@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path, timezone=TZ)


def get(storage, settings, path: str, token: str | None = None, **headers: str):
    """One GET to a fresh API app: status, headers, body text."""

    async def go():
        app = api.create_api(LocalReader(storage, settings), Metrics(), TZ, token)
        async with TestClient(TestServer(app)) as client:
            response = await client.get(path, headers=headers)
            return response.status, response.headers, await response.text()

    return asyncio.run(go())


def page_config(html: str) -> dict:
    start = html.index('<script type="application/json" id="board-config">')
    text = html[html.index(">", start) + 1:html.index("</script>", start)]
    return json.loads(text)


def test_the_registry_route_gives_every_kpi_with_its_name_unit_and_format(storage, settings):
    status, _, body = get(storage, settings, "/kpis/registry?lang=en")
    found = json.loads(body)
    assert status == 200 and [k["name"] for k in found["kpis"]] == list(FIELDS)
    by_name = {k["name"]: k for k in found["kpis"]}
    assert by_name["fcr_rate"] == {
        "name": "fcr_rate", "label": "First-contact resolution", "unit": "ratio",
        "direction": "higher_is_better", "samples": "resolutions", "family": "resolutions",
        "range": [0, 1], "format": {"style": "percent", "places": 1}}
    assert by_name["aht_avg_s"]["range"] is None  # durations have no upper bound
    assert set(found["formats"]) == {k.unit for k in REGISTRY.values()}
    # every KPI the board shows is named in both languages, as on the printed sheets
    zh = {k["name"]: k["label"] for k in json.loads(
        get(storage, settings, "/kpis/registry", **{"Accept-Language": "zh-CN"})[2])["kpis"]}
    for kpi in (*board.TABLE_KPIS, *board.CHART_KPIS):
        assert zh[kpi] == REPORT_ZH["kpis"][kpi] and by_name[kpi]["label"] == REPORT_EN["kpis"][kpi]


def test_the_page_loads_only_the_services_own_files(storage, settings):
    status, headers, html = get(storage, settings, "/?period=2026-11&refresh=2&lang=en")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert headers["Content-Language"] == "en"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    config = page_config(html)
    assert config["window"] == {"period": "2026-11"} and config["refresh_s"] == 2
    period = parse_period("2026-11", TZ)
    assert config["bounds"] == [period.start_ms, period.end_ms]
    assert config["needs_token"] == {"/kpis": False, "/backlog": False, "/kpis/daily": False,
                                     "/appraisals/latest": False}
    assert '<html lang="en">' in html and "After-sales live board" in html
    assert "http://" not in html.replace('"http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    for name in board.ASSETS:
        status, headers, text = get(storage, settings, f"/static/{name}")
        assert status == 200 and headers["Content-Type"].startswith(board.ASSETS[name])
        assert "http://" not in text.replace('"http://www.w3.org/2000/svg"', "")
        assert "https://" not in text and "//cdn" not in text
        assert f"/static/{name}?v={headers['ETag'].strip(chr(34))}" in html
        again = get(storage, settings, f"/static/{name}", **{"If-None-Match": headers["ETag"]})
        assert again[0] == 304
    assert get(storage, settings, "/static/../api.py")[0] == 404
    assert get(storage, settings, "/static/secret.txt")[0] == 404


def test_the_page_defaults_to_the_last_30_days_and_the_browsers_language(storage, settings):
    status, _, html = get(storage, settings, "/", **{"Accept-Language": "zh-CN,zh;q=0.9"})
    config = page_config(html)
    assert status == 200 and config["lang"] == "zh" and '<html lang="zh-CN">' in html
    assert config["window"] == {"window": "30d"} and config["bounds"] is None
    assert config["refresh_s"] == board.REFRESH_S
    assert "售后服务实时看板" in html and "近 30 天" in html


def test_with_a_token_the_page_asks_for_it_before_the_grades(storage, settings):
    _, _, html = get(storage, settings, "/", token=TOKEN)
    assert page_config(html)["needs_token"] == {
        "/kpis": False, "/backlog": False, "/kpis/daily": False, "/appraisals/latest": True}
    assert get(storage, settings, "/appraisals/latest", token=TOKEN)[0] == 401


@pytest.mark.parametrize(("path", "says"), [
    ("/?lang=fr", "lang must be one of zh, en"),
    ("/?refresh=0", "refresh must be an integer from 1 to 3600"),
    ("/?window=1y", "window must be one of"),
    ("/?period=2026-11&window=7d", "give one of"),
    ("/?colour=red", "unknown parameter 'colour'"),
    ("/kpis/daily?from=2026-01-01&to=2026-06-01", "at most 92 days"),
])
def test_a_mistake_in_the_address_is_a_400_naming_it(storage, settings, path, says):
    status, _, body = get(storage, settings, path)
    assert status == 400 and says in json.loads(body)["error"]


# ---------------------------------------------------------------- per-day KPIs, latest grades

@pytest.fixture(scope="module")
def fortnight():
    """Two weeks of November for 8 engineers (two teams)."""
    sim = simulate(date(2026, 11, 2), 14, 8, seed=5, timezone=TZ)
    return facts_from(sim.records), [roster.from_engineer(e) for e in sim.roster]


def day_window(day: str) -> tuple[int, int]:
    following = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    return parse_instant(day, TZ), parse_instant(following, TZ)


def test_each_day_of_the_series_equals_that_days_kpis(storage, settings, fortnight):
    facts, people = fortnight
    store(storage, facts)
    reader = LocalReader(storage, settings)
    lo, hi = parse_instant("2026-11-01T13:00", TZ), parse_instant("2026-11-20T01:00", TZ)
    series = reader.daily_kpis(lo, hi)
    # whole days: the window's first and last days are counted from midnight to midnight
    assert series["days"] == [(date(2026, 11, 1) + timedelta(days=n)).isoformat()
                              for n in range(20)]
    # no roster yet: nobody has a team, so the one team row of a day is the department's day
    department = {r.pop("day"): r for r in series["department"]}
    assert "2026-11-02" in department and "2026-11-15" in department
    for day in series["days"]:
        whole = kpis.compute(storage, *day_window(day), group="team")
        assert [{"team_id": None, **department[day]}] == close_to(whole) if whole else (
            day not in department), day
    roster.store(storage, people)
    teams = reader.daily_kpis(lo, hi)["teams"]
    assert {r["team_id"] for r in teams} == {p["team_id"] for p in people}
    for day in series["days"]:
        mine = {r["team_id"]: {k: v for k, v in r.items() if k != "day"}
                for r in teams if r["day"] == day}
        assert mine == close_to({r["team_id"]: r for r in kpis.compute(
            storage, *day_window(day), group="team")}), day


def test_the_daily_series_and_the_rolling_windows_are_one_query_each(storage, settings,
                                                                      fortnight, monkeypatch):
    """The live board asks ClickHouse once per answer, whatever the days, teams and families
    (it asked one query per family and grouping, and the live view one per family and window);
    the answers equal the KPIs of each window asked alone."""
    facts, people = fortnight
    store(storage, facts)
    roster.store(storage, people)
    reader = LocalReader(storage, settings)
    asked = []
    rows = storage.rows
    monkeypatch.setattr(storage, "rows", lambda sql, *a, **k: asked.append(sql) or rows(
        sql, *a, **k))
    lo, hi = parse_instant("2026-11-02", TZ), parse_instant("2026-11-16", TZ)
    series = reader.daily_kpis(lo, hi)
    assert len(asked) == 1
    now, spans = parse_instant("2026-11-12T15:00", TZ), {"24h": DAY_MS, "7d": 7 * DAY_MS}
    rolling = reader.rolling_kpis(now, spans)
    assert len(asked) == 2
    monkeypatch.setattr(storage, "rows", rows)
    assert len(series["department"]) == 14
    for label, span in spans.items():
        assert rolling[label] == close_to(kpis.compute(storage, now - span, now)), label


def close_to(value):
    """``value`` with its floats compared to 1e-9 relative: the same sums added up in another
    order (the review-360 mean of role means follows the rows' order) differ in the last bit."""
    if isinstance(value, dict):
        return {k: close_to(v) for k, v in value.items()}
    if isinstance(value, list):
        return [close_to(v) for v in value]
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9)
    return value


def test_the_board_shows_the_newest_closed_month(storage, settings, fortnight):
    facts, people = fortnight
    reader = LocalReader(storage, settings)
    assert reader.latest_appraisals() == {"period": None, "appraisals": []}
    store(storage, facts)
    roster.store(storage, people)
    after_grace = parse_instant("2027-01-09", TZ)
    for period in ("2026-11", "2026-10", "2026-Q4"):  # a quarter is no month
        close_period(storage, period, default_scheme(), after_grace)
    newest = reader.latest_appraisals()
    assert newest["period"] == "2026-11"
    assert newest["appraisals"] == reader.appraisals("2026-11") != []


def test_the_backlog_per_team_adds_up_its_engineers(storage, settings, fortnight):
    facts, people = fortnight
    store(storage, facts)
    roster.store(storage, people)
    engineers = json.loads(get(storage, settings, "/backlog")[2])
    teams = json.loads(get(storage, settings, "/backlog?group=team")[2])
    assert sum(r["open_tickets"] for r in engineers) > 0
    assert {r["team_id"]: (r["open_tickets"], r["overdue_tickets"]) for r in teams} == \
        backlog_by_team(engineers)


def backlog_by_team(engineers: list[dict]) -> dict:
    """The team backlog from the engineers' rows (an unassigned ticket has no team)."""
    out: dict = {}
    for r in engineers:
        key = r["team_id"] if r["team_id"] else None
        opened, overdue = out.get(key, (0, 0))
        out[key] = (opened + r["open_tickets"], overdue + r["overdue_tickets"])
    return out


# ---------------------------------------------------------------- the installed copy

def test_the_installed_copy_serves_the_board(installed, tmp_path):  # noqa: F811 - the fixture
    shown = fresh(installed, tmp_path, "-c", "\n".join([
        "from servicescore.app import board",
        "html = board.page('en', 5, {'window': '7d'}, None, 'Asia/Shanghai', {})",
        "assert 'board-config' in html and 'last 7 days' in html",
        "for name in board.ASSETS: assert board.asset(name)[0]",
        "print(board.__file__)"]))
    assert shown.returncode == 0, shown.stderr
    assert Path(shown.stdout.strip()).is_relative_to(installed)


# ---------------------------------------------------------------- in the browser

class Browser:
    """Headless Chromium driven over the Chrome DevTools protocol (aiohttp's websocket client,
    its own event loop in a thread, so the browser's events are read while the test waits)."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / "chromium.log"
        profile = folder / "profile"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                ["chromium", "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
                 "--no-default-browser-check", "--remote-debugging-port=0",
                 f"--user-data-dir={profile}", "about:blank"],
                stdout=log, stderr=subprocess.STDOUT)
        active = profile / "DevToolsActivePort"  # the port and path Chromium chose
        deadline = time.monotonic() + WAIT_S
        while len(active.read_text().splitlines() if active.exists() else []) < 2:
            assert self.process.poll() is None, self.log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "Chromium opened no DevTools port"
            time.sleep(0.1)
        port, path = active.read_text().splitlines()[:2]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict] = []
        self.call(self._connect(f"ws://127.0.0.1:{port}{path}"))

    def call(self, coroutine, timeout: float = WAIT_S):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _connect(self, url: str) -> None:
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(url, max_msg_size=0)
        self.reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                self.pending.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)

    async def _send(self, method: str, session: str | None, params: dict) -> dict:
        number = next(self.ids)
        self.pending[number] = self.loop.create_future()
        await self.ws.send_json({"id": number, "method": method, "params": params,
                                 **({"sessionId": session} if session else {})})
        reply = await self.pending[number]
        assert "error" not in reply, (method, reply["error"])
        return reply["result"]

    def send(self, method: str, session: str | None = None, **params) -> dict:
        return self.call(self._send(method, session, params))

    def open(self, url: str, **headers: str) -> Page:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable", session)
        if headers:
            self.send("Network.setExtraHTTPHeaders", session, headers=headers)
        self.send("Page.navigate", session, url=url)
        return Page(self, session, target)

    def close(self) -> None:
        async def stop():
            await self.ws.close()
            await self.http.close()
        try:
            self.call(stop(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Page:
    def __init__(self, browser: Browser, session: str, target: str):
        self.browser, self.session, self.target = browser, session, target

    def close(self) -> None:
        self.browser.send("Target.closeTarget", targetId=self.target)

    def evaluate(self, expression: str):
        found = self.browser.send("Runtime.evaluate", self.session, expression=expression,
                                  returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in found, found["exceptionDetails"]
        return found["result"].get("value")

    def wait_for(self, read, want, what: str):
        """Until ``read()`` equals ``want`` (the page refreshes by itself); the last reading in
        the failure message."""
        deadline, seen = time.monotonic() + WAIT_S, None
        while time.monotonic() < deadline:
            seen = read()
            if seen == want:
                return seen
            time.sleep(0.25)
        raise AssertionError(f"the page never showed {what}: {seen!r}, wanted {want!r}; "
                             f"console: {self.problems()}")

    def _events(self, *methods: str) -> list[dict]:
        return [e for e in list(self.browser.events)
                if e.get("sessionId") == self.session and e["method"] in methods]

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and errors the browser logged (a refused request,
        a blocked load, a CSP violation)."""
        out = []
        for e in self._events("Runtime.consoleAPICalled", "Runtime.exceptionThrown",
                              "Log.entryAdded"):
            p = e["params"]
            if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif e["method"] == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"].get("exception", {}).get("description", "?"))
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"{p['entry'].get('url', '')}: {p['entry']['text']}")
        return out

    def requested(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self._events("Network.requestWillBeSent")]

    def table(self, table_id: str) -> dict[str, dict[str, str]]:
        """Each row's cells as shown: {row key: {field: text}}."""
        return self.evaluate(f"""(() => {{
            const out = {{}};
            for (const tr of document.querySelectorAll("#{table_id} tbody tr")) {{
                const cells = {{}};
                for (const td of tr.cells) cells[td.dataset.field] = td.textContent;
                out[tr.dataset.key] = cells;
            }}
            return out;
        }})()""")

    def points(self, kpi: str) -> dict[str, dict[str, float]]:
        """The chart's points: {series: {day: value}}."""
        found = self.evaluate(f"""[...document.querySelectorAll(
            'figure[data-kpi="{kpi}"] g[data-series] circle.point')].map(
            c => [c.parentNode.dataset.series, c.dataset.day, c.dataset.value])""")
        out: dict[str, dict[str, float]] = {}
        for series, day, value in found:
            out.setdefault(series, {})[day] = float(value)
        return out

    def text(self, selector: str) -> str:
        return self.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")

    def refreshes(self) -> int:
        return int(self.evaluate("document.body.dataset.refreshes"))


SHOWN = ("open_tickets", "overdue_tickets", *board.TABLE_KPIS)


def shown(table: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The cells that must equal the commands' output (the oldest open ticket's age grows with
    every second, so it is left out)."""
    return {key: {f: row[f] for f in SHOWN} for key, row in table.items()}


def expected(kpi_rows: list[dict], backlog: dict[str, tuple[int, int]],
             key: str) -> dict[str, dict[str, str]]:
    """The table the board must show: a row per engineer (team) of `servicescore kpis`, its
    values written as the printed sheets write them, with its open and overdue tickets; and a
    row for whoever holds open tickets without a KPI in the window."""
    out = {}
    for r in kpi_rows:
        out[r[key] or ""] = {"open_tickets": "0", "overdue_tickets": "0",
                             **{k: kpi_value(k, r[k]) for k in board.TABLE_KPIS}}
    for holder, (opened, overdue) in backlog.items():
        row = out.setdefault(holder or "", dict.fromkeys(board.TABLE_KPIS, "—"))
        row.update(open_tickets=str(opened), overdue_tickets=str(overdue))
    return out


def commands(p: Pipeline, window: tuple[str, ...]) -> tuple[dict, dict]:
    """What `servicescore kpis` and `servicescore live` say: the engineers' and the teams'
    tables the board must show."""
    live = p.json("live")
    engineers = expected(p.json("kpis", *window), {r["engineer_id"]: (
        r["open_tickets"], r["overdue_tickets"]) for r in live}, "engineer_id")
    teams = expected(p.json("kpis", *window, "--group", "team"), backlog_by_team(live),
                     "team_id")
    return engineers, teams


def test_the_board_writes_a_value_as_the_printed_sheets_do(browser):
    """static/format.js, run in Chromium on values of every unit (ties, near-ties, sums that
    are not quite what they look, random ones), against appraisal.report.kpi_value."""
    rng = random.Random(7)
    cases = {
        # 3/80 is 0.0374999... in binary: 3.7 % on the sheets, 3.8 % from a float product
        "fcr_rate": [0.0625, 0.8125, 0.1235, 0.285, 0.875, 1 / 3, 0.0005, 0.9995, 1.0, 0.0,
                     *(k / 80 for k in range(81)),
                     *(k / n for n in (16, 2000) for k in range(0, n + 1, max(1, n // 40))),
                     *(rng.random() for _ in range(300))],
        "aht_avg_s": [0, 0.5, 29.5, 59.4, 59.5, 59.6, 60, 89.99999999999999, 90, 6749.9, 6720,
                      172800, 3629.99, *(rng.uniform(0, 200_000) for _ in range(300))],
        "csat_avg": [4.125, 4.135, 4.005, 3.995, 1, 5, *(rng.uniform(1, 5) for _ in range(300))],
        "nps": [-14.85, 12.94, 12.95, -0.04, -0.06, 42.857142857142854, 95, 0,
                *(rng.uniform(-100, 100) for _ in range(300))],
        "assessment_compliance": [95, 89.95, 60.05, *(rng.uniform(0, 100) for _ in range(100))],
        "resolutions": [0, 1, 17, 1234],
    }
    flat = [(kpi, value) for kpi, values in cases.items() for value in [None, *values]]
    formats = {kpi: board.FORMATS[REGISTRY[kpi].unit] for kpi in cases}
    script = resources.files("servicescore.app").joinpath("static", "format.js").read_text()
    page = browser.open("about:blank")
    written = page.evaluate(f"""(() => {{ {script}
        const formats = {json.dumps(formats)};
        return {json.dumps(flat)}.map(([kpi, value]) =>
            BoardFormat.format(formats[kpi], value, "—"));
    }})()""")
    differ = [(k, v, w) for (k, v), w in zip(flat, written, strict=True) if w != kpi_value(k, v)]
    assert differ == []
    page.close()


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """Ten days of November for 8 engineers, cut in two on 2026-11-09: the board is opened after
    the first part and must follow the second."""
    sim = simulate(date(2026, 11, 3), 10, 8, seed=19, timezone=TZ)
    cut = parse_instant("2026-11-09", TZ)
    # the simulator writes some times as RFC 3339 text and some as epoch ms, as systems do
    at = {id(e): e["occurred_at"] if isinstance(e["occurred_at"], int)
          else parse_instant(e["occurred_at"], TZ) for _, e in sim.records}
    early = [(t, e) for t, e in sim.records if at[id(e)] < cut]
    late = [(t, e) for t, e in sim.records if at[id(e)] >= cut]
    folder = tmp_path_factory.mktemp("board-traffic")
    write_jsonl(early, folder / "early.jsonl")
    write_jsonl(late, folder / "late.jsonl")
    write_roster_csv(sim.roster, folder / "roster.csv")
    assert early and late
    return folder


@pytest.fixture(scope="module")
def service(kafka_bootstrap, tmp_path_factory, month):
    """`servicescore run` (token set) with the first part processed and November closed."""
    p = Pipeline(kafka_bootstrap, tmp_path_factory.mktemp("board-pipeline"))
    p.env["SERVICESCORE_API_TOKEN"] = TOKEN
    p.cli("topics", "create")
    p.cli("roster", "import", str(month / "roster.csv"))
    p.start("run")
    try:
        p.cli("replay", str(month / "early.jsonl"))
        p.wait_idle()
        p.cli("close", "--period", "2026-11", "--early")
        yield p
    finally:
        p.stop_all()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    opened = Browser(tmp_path_factory.mktemp("chromium"))
    yield opened
    opened.close()


def base(p: Pipeline) -> str:
    return f"http://{p.env['SERVICESCORE_API']}"


def test_the_board_shows_what_the_commands_say_and_follows_new_events(service, browser, month):
    p = service
    window = ("--period", "2026-11")
    page = browser.open(f"{base(p)}/?period=2026-11&refresh=1&lang=en")
    engineers, teams = commands(p, window)
    page.wait_for(lambda: shown(page.table("engineer-table")), engineers, "the engineers")
    assert shown(page.table("team-table")) == teams
    assert page.text("#engineer-table th[data-field=fcr_rate]") == "First-contact resolution"

    # the charts: one point per day with samples, each the value of that day's KPIs
    for day in ("2026-11-04", "2026-11-06"):
        following = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        that_day = p.json("kpis", "--from", day, "--to", following, "--group", "team")
        for kpi in board.CHART_KPIS:
            points = page.points(kpi)
            assert close_to({r["team_id"]: r[kpi] for r in that_day if r[kpi] is not None}) == {
                series.removeprefix("team:"): values[day] for series, values in points.items()
                if series != "department" and day in values}, (kpi, day)
            assert day in points["department"]

    # the grades need the token: the page asks for it instead of being refused
    assert page.evaluate("document.getElementById('token-form').hidden") is False
    assert page.table("grade-table") == {}
    page.evaluate(f"""document.getElementById("token-input").value = {json.dumps(TOKEN)};
                      document.getElementById("token-form").requestSubmit(); true""")
    frozen = p.json("appraisals", "--period", "2026-11")
    page.wait_for(lambda: page.table("grade-table"), {
        r["engineer_id"]: {"engineer": r["engineer_id"],
                           "role": REPORT_EN["roles"].get(r["role"], r["role"]),
                           "score": r["score"] if r["score"] is not None else "—",
                           "grade": REPORT_EN["grades"][r["grade"]]} for r in frozen},
        "the frozen grades")
    assert page.evaluate("document.getElementById('grade-period').dataset.period") == "2026-11"

    # new events: the open page shows the new values by itself (no reload: the marker stays)
    page.evaluate("window.stillTheSamePage = true")
    p.cli("replay", str(month / "late.jsonl"))
    p.wait_idle()
    later_engineers, later_teams = commands(p, window)
    assert later_engineers != engineers
    page.wait_for(lambda: shown(page.table("engineer-table")), later_engineers,
                  "the engineers after the new events")
    page.wait_for(lambda: shown(page.table("team-table")), later_teams,
                  "the teams after the new events")
    assert page.evaluate("window.stillTheSamePage") is True

    assert page.problems() == []
    assert [u for u in page.requested() if not u.startswith(base(p) + "/")] == []
    assert {u.removeprefix(base(p)).split("?")[0] for u in page.requested()} >= {
        "/", "/static/format.js", "/static/board.js", "/static/board.css", "/kpis/registry",
        "/kpis", "/backlog",
        "/kpis/daily", "/appraisals/latest"}
    page.close()


def test_a_browser_asking_for_chinese_gets_the_board_in_chinese(service, browser):
    p = service
    page = browser.open(f"{base(p)}/?period=2026-11&refresh=1",
                        **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    engineers, _ = commands(p, ("--period", "2026-11"))
    page.wait_for(lambda: shown(page.table("engineer-table")), engineers, "the engineers")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.text("h1") == "售后服务实时看板"
    headers = page.evaluate("""Object.fromEntries([...document.querySelectorAll(
        "#engineer-table th")].map(th => [th.dataset.field, th.textContent]))""")
    assert headers["engineer"] == "工程师" and headers["open_tickets"] == "未结工单"
    assert {k: headers[k] for k in board.TABLE_KPIS} == {
        k: REPORT_ZH["kpis"][k] for k in board.TABLE_KPIS}
    assert [page.text(f'figure[data-kpi="{k}"] figcaption') for k in board.CHART_KPIS] == [
        REPORT_ZH["kpis"][k] for k in board.CHART_KPIS]
    assert "考核结果需要 API 令牌" in page.text("#token-form")
    assert "更新于" in page.text("#status")
    assert page.problems() == []
    page.close()
