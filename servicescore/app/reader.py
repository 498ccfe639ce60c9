"""Read side used by the CLI and the HTTP API: KPIs, drill-down, live view, dead letters.

``LocalReader`` queries ClickHouse directly; ``HttpReader`` asks a running service's API, for
when the embedded engine's data folder is held by ``servicescore run``.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.facts import FACT_TABLES
from schemas.period import parse_instant
from servicescore.app.operations import OPERATIONS
from servicescore.core.errors import ServicescoreError
from servicescore.core.settings import Settings
from servicescore.kafka.client import Cluster
from servicescore.queries import drilldown, invariants, kpis, live
from servicescore.storage.clickhouse import Storage

MAX_DAYS = 92  # a daily series of at most a quarter: one row per day and team comes back


class LocalReader:
    def __init__(self, storage: Storage, settings: Settings):
        self.storage = storage
        self.settings = settings

    def kpis(self, from_ms: int, to_ms: int, engineer=None, team=None, group="engineer"):
        return kpis.compute(self.storage, from_ms, to_ms, group, engineer, team)

    def tickets(self, from_ms: int, to_ms: int, engineer=None, team=None):
        return drilldown.resolutions(self.storage, from_ms, to_ms, engineer, team)

    def backlog(self, group: str = "engineer"):
        return live.backlog(self.storage, int(time.time() * 1000), group)

    def dead_letters(self, limit: int = 100, topic: str | None = None) -> list[dict]:
        return self._letters(limit, topic)

    def _letters(self, limit: int, topic: str | None, pending: bool = False) -> list[dict]:
        where = " AND ".join((["topic = {topic:String}"] if topic else [])
                             + (["replayed_at IS NULL"] if pending else []))
        where = f"WHERE {where}" if where else ""
        return self.storage.rows(
            "SELECT topic, partition, offset, reason, raw_base64, raw_bytes, raw_sha256, "
            "truncated, "
            "toUnixTimestamp64Milli(rejected_at) AS rejected_at, "
            "toUnixTimestamp64Milli(replayed_at) AS replayed_at "
            f"FROM dead_letters FINAL {where} ORDER BY rejected_at DESC, topic, partition, offset "
            "LIMIT {limit:UInt32}", {"limit": limit, "topic": topic or ""})


    def replay_dead_letters(self, limit: int = 100, topic: str | None = None) -> int:
        """Republish the pending dead letters to their source topics. Each is marked replayed
        first (versioned by the time), so that a refusal of the republished message, which
        comes later, replaces the mark; a failed publish takes the marks back. A letter whose
        raw bytes were truncated cannot be republished and stays pending."""
        from servicescore.kafka import publish, topics

        letters = [d for d in self._letters(limit, topic, pending=True) if not d["truncated"]]
        if not letters:
            return 0
        self._mark(letters, replayed_at=int(time.time() * 1000))
        try:
            return topics.run(publish.republish_dead_letters(Cluster.of(self.settings),
                                                             letters))
        except BaseException:
            self._mark(letters, replayed_at=None)
            raise

    def _mark(self, letters: list[dict], replayed_at: int | None) -> None:
        spec = FACT_TABLES["dead_letter"]
        version = time.time_ns() // 1_000_000
        self.storage.insert(spec.table, [spec.row({**d, "replayed_at": replayed_at,
                                                   "v": version, "del": 0}) for d in letters],
                            spec.columns)

    def held(self, limit: int = 100) -> list[dict]:
        """Events waiting for their ticket-opened, the longest waiting first."""
        return live.held(self.storage, int(time.time() * 1000), limit)

    def held_summary(self) -> dict:
        return live.held_summary(self.storage, int(time.time() * 1000))

    def check(self) -> dict:
        return invariants.inconsistent_tickets(self.storage)

    # ------------------------------------------------------------------ the period close

    def close(self, period: str, early: bool = False, supersede: str | None = None) -> dict:
        from appraisal.close import close_period
        from servicescore.core.faults import Faults

        done = close_period(self.storage, period, self.scheme(), int(time.time() * 1000),
                            early=early, supersede=supersede,
                            faults=Faults.parse(self.settings.crash_at))
        return {"period": done.period, "close_id": done.close_id, "engineers": done.engineers,
                "content_hash": done.content_hash, "supersedes": done.supersedes}

    def appraisals(self, period: str, with_superseded: bool = False) -> list[dict]:
        from appraisal.results import appraisals

        return appraisals(self.storage, period, self.scheme().timezone, with_superseded)

    def adjustments(self, period: str) -> list[dict]:
        from appraisal.results import adjustments

        return adjustments(self.storage, period)

    def score(self, period: str, scheme: str | None = None) -> list[dict]:
        """What-if: the period scored with ``scheme`` (a scheme file's text; the configured
        scheme when None). Freezes nothing."""
        from appraisal.results import what_if
        from appraisal.scheme import parse_scheme

        chosen = parse_scheme(scheme, "the given scheme") if scheme is not None else self.scheme()
        return what_if(self.storage, period, chosen)

    def assess_import(self, csv: str) -> dict:
        return publish_assessments(self.settings, csv or "", "the assessments file")

    def report_data(self, period: str, engineer: str | None = None) -> dict:
        """What ``servicescore report`` prints for the period's current close (of one
        engineer when given); the CLI renders and writes the pages itself."""
        from appraisal.history import report_data

        return report_data(self.storage, period, engineer)

    # ------------------------------------------------------------------ the live board

    def daily_kpis(self, from_ms: int, to_ms: int) -> dict:
        """The KPIs of each whole day (in the business timezone) that [from, to) touches, for
        the department and per team: ``{"days": ["2026-11-01", ...], "department": [{"day",
        ...KPIs}], "teams": [{"day", "team_id", ...KPIs}]}``; a day (a team's day) without
        samples has no row. At most MAX_DAYS days."""
        timezone = self.settings.timezone
        zone = ZoneInfo(timezone)
        first = datetime.fromtimestamp(from_ms / 1000, zone).date()
        last = datetime.fromtimestamp((to_ms - 1) / 1000, zone).date()
        count = (last - first).days + 1
        if count > MAX_DAYS:
            raise ServicescoreError(f"a daily series covers at most {MAX_DAYS} days, "
                                    f"not {count}")
        days = [(first + timedelta(days=n)).isoformat() for n in range(count)]
        lo = parse_instant(days[0], timezone)
        hi = parse_instant((last + timedelta(days=1)).isoformat(), timezone)
        department, teams = [], []
        for row in kpis.compute(self.storage, lo, hi, "team", source=per_day(timezone)):
            key = row.pop("team_id")
            if key[0] == "D":
                department.append({"day": key[1:], **row})
            else:
                teams.append({"day": key[1:11], "team_id": key[12:] or None, **row})
        return {"days": days, "department": department, "teams": teams}

    def rolling_kpis(self, now_ms: int, spans_ms: dict[str, int]) -> dict[str, list[dict]]:
        """The KPIs per engineer of each window ``now - span``, by label: one query."""
        return kpis.compute_windows(self.storage, {label: (now_ms - span, now_ms)
                                                   for label, span in spans_ms.items()})

    def latest_appraisals(self) -> dict:
        """The frozen results of the newest month with a current close (the board's grades):
        ``{"period": "2026-11", "appraisals": [...]}``, the period None when none is closed."""
        found = self.storage.rows("SELECT period FROM close_status WHERE kind = 'month' "
                                  "AND status = 'frozen' ORDER BY period DESC LIMIT 1")
        if not found:
            return {"period": None, "appraisals": []}
        period = found[0]["period"]
        return {"period": period, "appraisals": self.appraisals(period)}

    def scheme(self):
        """The scheme in force: SERVICESCORE_SCHEME, else the shipped default."""
        from appraisal.scheme import default_scheme, load_scheme

        return load_scheme(self.settings.scheme) if self.settings.scheme else default_scheme()


def per_day(timezone: str):
    """A sample source for ``kpis.compute`` (group "team") that answers per day, for the
    department and per team at once: each family's live samples twice, ``team_id`` replaced
    by ``D`` and the sample's day in ``timezone`` (``D2026-11-03``), and by ``T``, the day,
    ``=`` and the team (``T2026-11-03=team-a``; ``T`` and the day alone when the engineer has no
    team). The KPI formulas stay those of servicescore/queries/kpis.py, in one query for every
    family, day and team."""
    if not re.fullmatch(r"[A-Za-z0-9_+/-]+", timezone):  # a zone name, put into the SQL text
        raise ValueError(f"unexpected timezone name {timezone!r}")
    day = f"toString(toDate(at, '{timezone}'))"
    key = f"arrayJoin([concat('D', {day}), concat('T', {day}, ifNull(concat('=', team_id), ''))])"
    return lambda family: (f"(SELECT * REPLACE ({key} AS team_id) "
                           f"FROM {kpis.sample_source(family)})")


def publish_assessments(settings: Settings, text: str, source: str) -> dict:
    """People's assessments (a CSV file's text) published as assessment-recorded events: the
    whole file or nothing. Needs Kafka only, never the storage."""
    from appraisal.assessments import read_assessments
    from servicescore.kafka import publish, topics

    events = read_assessments(text, source, int(time.time() * 1000))
    sent = topics.run(publish.publish(Cluster.of(settings),
                                      [("assessment-recorded", e) for e in events]))
    return {"published": sent}


class HttpReader:
    """The same questions, asked of a running service (``servicescore run``)."""

    def __init__(self, api: str, token: str | None = None):
        self.base = api if api.startswith("http") else f"http://{api}"
        self.token = token

    def _call(self, method: str, path: str, body: str | None = None, **params):
        query = urllib.parse.urlencode({k: _query_value(v) for k, v in params.items()
                                        if v is not None and v is not False})
        request = urllib.request.Request(f"{self.base}{path}?{query}", method=method,
                                         data=body.encode() if body is not None else None)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ServicescoreError(self._refusal(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ServicescoreError(
                f"the embedded data folder is in use and the service API at {self.base} "
                f"is not reachable ({getattr(exc, 'reason', exc)})") from None

    def _refusal(self, exc: urllib.error.HTTPError) -> str:
        """The service's own one-line message, said once: the API answers {"error": ...}, which
        the CLI prints after its own ``servicescore:``."""
        body = exc.read()[:2000].decode(errors="replace")
        try:
            message = str(json.loads(body)["error"])
        except (ValueError, KeyError, TypeError):
            message = body.strip().splitlines()[0][:200] if body.strip() else exc.reason
        message = message.removeprefix("servicescore: ")
        return f"the service at {self.base} answered {exc.code}: {message}"

    def __getattr__(self, name: str):
        """Each operation of servicescore/app/operations.py, asked over HTTP: positional and
        keyword arguments as the LocalReader method takes them."""
        operation = OPERATIONS.get(name)
        if operation is None:
            raise AttributeError(name)

        def ask(*args, **kwargs):
            params = {**dict(zip(operation.params, args, strict=False)), **kwargs}
            body = params.pop(operation.body, None) if operation.body else None
            return self._call(operation.method, operation.path, body, **params)
        return ask


def _query_value(value) -> str:
    return "true" if value is True else str(value)
