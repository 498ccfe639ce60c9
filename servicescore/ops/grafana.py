"""The Grafana dashboards of deploy/grafana/dashboards, generated from the product's definitions.

Nothing here defines a KPI. Every ClickHouse panel runs the product's own SQL: the KPI family
aggregates and sample views of ``servicescore.queries.kpis`` (the registry's ``VIEWS``), the
backlog of ``servicescore.queries.live``, the drill-down of ``servicescore.queries.drilldown``
and the "current close of each period" of ``appraisal.history``, with their query parameters
bound to Grafana's variables (``{from_ms:Int64}`` becomes ``${__from}``, the time picker's start
in epoch milliseconds), so a panel shows what ``servicescore kpis`` shows for the same window.
The registry (``schemas.kpis``) gives the columns, their units and their descriptions.

The KPI panels run ``kpis.rows_sql``, the one query ``kpis.compute`` runs: the families joined
per engineer or team, counts 0 when absent, NaN as null, ``nps`` from the aggregate's
``nps_score``, ``complaint_rate`` = complaints / resolutions, the assessment means and the
review-360 weighted mean of role means. tests/test_grafana.py checks the panels equal
``kpis.compute`` field by field.

    python -m servicescore.ops.grafana            # rewrite deploy/grafana/dashboards/*.json
    python -m servicescore.ops.grafana --check    # exit 1 if the checked-in files differ
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

from appraisal import history
from appraisal.scorecard import KpiScore
from schemas.kpis import FIELDS, REGISTRY
from servicescore.queries import drilldown, kpis, live

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "deploy" / "grafana" / "dashboards"

# The provisioned data sources (deploy/grafana/provisioning/datasources/servicescore.yml).
CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "servicescore-clickhouse"}
PROMETHEUS = {"type": "prometheus", "uid": "servicescore-prometheus"}
LIVE_UID, APPRAISAL_UID, PIPELINE_UID = ("servicescore-live", "servicescore-appraisal",
                                         "servicescore-pipeline")
SCHEMA_VERSION = 39

# The time picker's range in epoch milliseconds (Grafana's built-in variables).
FROM_MS, TO_MS = "${__from}", "${__to}"
ROLLING = {"24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000}  # kpis.md live view
TREND_PERIODS = 12  # closed periods on the trend and grades-per-period charts

# The product's query text (module-private names: these panels must run exactly that SQL).
AGGREGATES: dict[str, str] = kpis._AGGREGATES
FAMILY_SQL = kpis._sql
BACKLOG, BACKLOG_GROUPS, HELD_SUMMARY = live._BACKLOG, live._GROUPS, live._HELD_SUMMARY
DRILLDOWN = drilldown._SQL
CLOSES = history._CLOSES

def condition(column: str, variable: str) -> str:
    """``column`` limited to the variable's selection; no condition when it is *All*."""
    return f"$__conditionalAll({column} IN (${{{variable}:singlequote}}), ${variable})"


ENGINEER, TEAM = condition("engineer_id", "engineer"), condition("team_id", "team")


def bind(sql: str, **values: str) -> str:
    """``sql`` with each query parameter ``{name:Type}`` replaced by a Grafana expression; a
    parameter the query does not have, or one left unbound, is a mistake here."""
    for name, expression in values.items():
        pattern = re.compile(r"\{" + name + r":[A-Za-z0-9()]+\}")
        if not pattern.search(sql):
            raise ValueError(f"the query has no parameter {name}")
        sql = pattern.sub(lambda _, e=expression: e, sql)
    left = re.search(r"(?<!\$)\{\w+:[A-Za-z0-9()]+\}", sql)  # ${name:format} is Grafana's
    if left:
        raise ValueError(f"parameter {left[0]} left unbound")
    return " ".join(sql.split())  # one line: the JSON stays readable


# ---------------------------------------------------------------------------------- KPI SQL


def _aliases(family: str) -> list[str]:
    return kpis._aliases(family)


def _kpi_rows(group: str, where: list[str], window: tuple[str, str] = (FROM_MS, TO_MS)) -> str:
    """One row per ``group`` value (``grp``) with every KPI field of the registry: the product's
    one query (``kpis.rows_sql``) over ``window`` (epoch-ms expressions)."""
    return bind(kpis.rows_sql(group, where), from_ms=window[0], to_ms=window[1])


def engineer_kpis_sql() -> str:
    """Every KPI per engineer with a sample in the time range (``servicescore kpis``)."""
    names = ", ".join(f"k.{name} AS {name}" for name in FIELDS)
    return (f"SELECT k.grp AS engineer_id, ro.team_id AS team_id, {names} "
            f"FROM ({_kpi_rows('engineer_id', [ENGINEER, TEAM])}) AS k "
            "LEFT JOIN team_of AS ro ON ro.engineer_id = k.grp ORDER BY engineer_id")


def team_kpis_sql() -> str:
    """Every KPI per team (``servicescore kpis --group team``): the team's samples pooled."""
    names = ", ".join(f"k.{name} AS {name}" for name in FIELDS)
    return (f"SELECT k.grp AS team_id, {names} "
            f"FROM ({_kpi_rows('team_id', [ENGINEER, TEAM])}) AS k ORDER BY team_id")


def rolling_kpis_sql() -> str:
    """The selection's KPIs over the last 24 h, 7 d and 30 d before the end of the range."""
    names = ", ".join(f"k.{name} AS {name}" for name in FIELDS)
    parts = []
    for label, span in ROLLING.items():
        rows = _kpi_rows(f"'{label}'", [ENGINEER, TEAM], (f"({TO_MS} - {span})", TO_MS))
        parts.append(f"SELECT k.grp AS window, {names} FROM ({rows}) AS k")
    order = ", ".join(f"'{label}'" for label in ROLLING)
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY indexOf([{order}], window)"


def family_over_time_sql(family: str) -> str:
    """A family's aggregates per interval of the range, for the selection."""
    sql = bind(FAMILY_SQL(family, "$__timeInterval(at)", [ENGINEER, TEAM]),
               from_ms=FROM_MS, to_ms=TO_MS)
    named = {column: name for name, column in kpis.SQL_NAMES.items()}
    columns = ", ".join(f"{a} AS {named.get(a, a)}" for a in _aliases(family))
    return f"SELECT grp AS time, {columns} FROM ({sql}) ORDER BY time"


def backlog_sql(group: str) -> str:
    """Open tickets per owner (or team) now, i.e. at the end of the range (``servicescore
    live``): how many, how many past their resolution target, the oldest one's age."""
    sql = bind(BACKLOG.format(group=BACKLOG_GROUPS[group]), now_ms=TO_MS)
    where = [ENGINEER, TEAM] if group == "engineer" else [TEAM]
    return (f"SELECT *, greatest(0, {TO_MS} - oldest_open_since) / 1000 AS oldest_open_age_s "
            f"FROM ({sql}) WHERE {' AND '.join(where)} "
            "ORDER BY open_tickets DESC, overdue_tickets DESC")


def backlog_totals_sql() -> str:
    return (f"SELECT sum(open_tickets) AS open_tickets, sum(overdue_tickets) AS overdue_tickets "
            f"FROM ({backlog_sql('engineer')})")


def open_tickets_sql() -> str:
    """The backlog's tickets; overdue as the backlog counts it (due before the range's end)."""
    return (f"SELECT ticket_id, engineer_id, team_id, priority, open_since, due_at, "
            f"due_at < fromUnixTimestamp64Milli({TO_MS}, 'UTC') AS overdue "
            f"FROM open_tickets WHERE {ENGINEER} AND {TEAM} ORDER BY due_at, ticket_id")


def held_sql() -> str:
    return (f"SELECT held_events, if(held_events = 0, NULL, greatest(0, {TO_MS} - "
            f"oldest_held_since) / 1000) AS oldest_held_age_s FROM ({bind(HELD_SUMMARY)})")


def tickets_sql() -> str:
    """The drill-down (``servicescore tickets``): one row per resolution in the range."""
    where = " AND ".join(["1", condition("r.engineer_id", "engineer"),
                          condition("ro.team_id", "team")])
    return bind(DRILLDOWN.replace("{where}", where), from_ms=FROM_MS, to_ms=TO_MS)


# ----------------------------------------------------------------------------- appraisal SQL

KIND, PERIOD, CHOSEN = "${kind:sqlstring}", "${period:sqlstring}", "${engineer:sqlstring}"


def closes_sql(count: int) -> str:
    """The current close of each period of the chosen kind up to the chosen one."""
    return bind(CLOSES, kind=KIND, period=PERIOD, count=str(count))


def current_close_sql() -> str:
    return f"SELECT close_id FROM ({closes_sql(1)}) WHERE period = {PERIOD}"


def appraisals_sql() -> str:
    return ("SELECT a.engineer_id AS engineer_id, ro.name AS name, ro.team_id AS team_id, "
            "a.role AS role, toFloat64OrNull(a.score) AS score, a.grade AS grade, "
            "a.grade_label AS grade_label, toFloat64OrNull(a.bonus) AS bonus, "
            "arrayStringConcat(a.flags, ', ') AS flags FROM appraisals AS a "
            "LEFT JOIN (SELECT engineer_id, name, team_id FROM roster FINAL) AS ro "
            f"ON ro.engineer_id = a.engineer_id WHERE a.close_id IN ({current_close_sql()}) "
            "ORDER BY score DESC NULLS LAST, engineer_id")


def distribution_sql() -> str:
    return ("SELECT grade_label, count() AS engineers FROM appraisals "
            f"WHERE close_id IN ({current_close_sql()}) GROUP BY grade_label "
            "ORDER BY min(toFloat64OrNull(score)) DESC NULLS LAST")


def grades_per_period_sql() -> str:
    return ("SELECT period, grade_label, count() AS engineers FROM appraisals "
            f"WHERE close_id IN (SELECT close_id FROM ({closes_sql(TREND_PERIODS)})) "
            "GROUP BY period, grade_label ORDER BY period, grade_label")


def scorecard_sql() -> str:
    return ("SELECT toFloat64OrNull(score) AS score, grade_label, toFloat64OrNull(bonus) AS bonus, "
            "role, arrayStringConcat(flags, ', ') AS flags FROM appraisals "
            f"WHERE close_id IN ({current_close_sql()}) AND engineer_id = {CHOSEN}")


# A scorecard line's JSON (appraisal/scorecard.py KpiScore.to_json): Decimals travel as text.
_EXTRACT = {"Decimal | None": "toFloat64OrNull(JSONExtractString(k, '{0}'))",
            "Decimal": "toFloat64OrNull(JSONExtractString(k, '{0}'))",
            "int": "JSONExtractInt(k, '{0}')", "bool": "JSONExtractBool(k, '{0}')",
            "str": "JSONExtractString(k, '{0}')",
            "str | None": "nullIf(JSONExtractString(k, '{0}'), '')"}


def scorecard_kpis_sql() -> str:
    """The frozen scorecard's lines, one per KPI of the scheme, in the scheme's order."""
    shown = ", ".join(_EXTRACT[str(f.type)].format(f.name) + f" AS {f.name}"
                      for f in dataclasses.fields(KpiScore))
    return (f"SELECT {shown} FROM appraisals ARRAY JOIN JSONExtractArrayRaw(kpis) AS k "
            f"WHERE close_id IN ({current_close_sql()}) AND engineer_id = {CHOSEN}")


def trend_sql() -> str:
    """The engineer's frozen score in the last closed periods (``appraisal.history``)."""
    return ("SELECT period, toFloat64OrNull(score) AS score FROM appraisals "
            f"WHERE close_id IN (SELECT close_id FROM ({closes_sql(TREND_PERIODS)})) "
            f"AND engineer_id = {CHOSEN} ORDER BY period")


def closes_log_sql() -> str:
    return ("SELECT closed_at, period, kind, status, engineers, scheme_version, supersedes, "
            "reason, superseded_by, content_hash FROM close_status "
            "WHERE $__timeFilter(closed_at) ORDER BY closed_at DESC")


# ------------------------------------------------------------------------ panels and layout

_UNITS = {"count": ("none", 0), "seconds": ("s", 0), "ratio": ("percentunit", 1),
          "csat": ("none", 2), "score": ("none", 1), "nps": ("none", 0)}


def kpi_overrides(names) -> list[dict]:
    """Unit, decimals and a description per KPI column, from the registry."""
    out = []
    for name in names:
        kpi = REGISTRY[name]
        unit, decimals = _UNITS[kpi.unit]
        text = f"{kpi.direction.replace('_', ' ')}; {kpi.samples} samples; from {kpi.view}"
        out.append({"matcher": {"id": "byName", "options": name}, "properties": [
            {"id": "unit", "value": unit}, {"id": "decimals", "value": decimals},
            {"id": "description", "value": text}]})
    return out


def _override(name: str, **properties) -> dict:
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": key, "value": value} for key, value in properties.items()]}


def _link(title: str, dashboard: str, **variables: str) -> dict:
    query = "&".join(["${__url_time_range}"] + [f"var-{k}={v}" for k, v in variables.items()])
    return {"title": title, "url": f"/d/{dashboard}?{query}"}


class Board:
    """One dashboard: panels laid out left to right in rows of 24 columns."""

    def __init__(self, uid: str, title: str, description: str, time: str, tags: list[str]):
        self.uid, self.title, self.description, self.time, self.tags = (
            uid, title, description, time, tags)
        self.panels: list[dict] = []
        self.variables: list[dict] = []
        self.x = self.y = self.row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"id": len(self.panels) + 1, "type": "row", "title": title,
                            "collapsed": False, "panels": [],
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.y += 1

    def panel(self, kind: str, title: str, targets: list[dict], w: int, h: int,
              description: str = "", **extra) -> dict:
        if self.x + w > 24:
            self._newline()
        datasource = targets[0]["datasource"]
        panel = {"id": len(self.panels) + 1, "type": kind, "title": title,
                 "description": description, "datasource": datasource,
                 "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
                 "targets": targets, **extra}
        panel.setdefault("fieldConfig", {"defaults": {}, "overrides": []})
        panel.setdefault("options", {})
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)
        return panel

    def _newline(self) -> None:
        self.y += self.row_height
        self.x = self.row_height = 0

    def json(self) -> dict:
        return {"uid": self.uid, "title": self.title, "description": self.description,
                "tags": self.tags, "timezone": "browser", "editable": True,
                "graphTooltip": 1, "schemaVersion": SCHEMA_VERSION, "version": 1,
                "refresh": "30s", "time": {"from": self.time, "to": "now"},
                "links": [{"title": "servicescore", "type": "dashboards", "tags": ["servicescore"],
                           "asDropdown": True}],
                "templating": {"list": self.variables}, "annotations": {"list": []},
                "panels": self.panels}


def target(query: str, ref: str = "A", table: bool = True) -> dict:
    """A ClickHouse target in the SQL editor; format 1 is a table, 0 a time series."""
    return {"refId": ref, "datasource": CLICKHOUSE, "editorType": "sql",
            "format": 1 if table else 0, "queryType": "table" if table else "timeseries",
            "rawSql": query}


def promql(expr: str, legend: str, ref: str = "A") -> dict:
    return {"refId": ref, "datasource": PROMETHEUS, "expr": expr, "legendFormat": legend,
            "range": True}


def query_variable(name: str, label: str, query: str, multi: bool) -> dict:
    return {"name": name, "label": label, "type": "query", "datasource": CLICKHOUSE,
            "query": query, "definition": query, "refresh": 2, "sort": 1, "multi": multi,
            "includeAll": multi, "current": ({"text": ["All"], "value": ["$__all"]} if multi
                                             else {}), "options": []}


# ---------------------------------------------------------------------------- dashboards


def live_dashboard() -> dict:
    board = Board(LIVE_UID, "servicescore · Live KPIs",
                  "Every KPI of kpis.md per engineer and team for the time range, the rolling "
                  "24 h / 7 d / 30 d windows, the backlog and the tickets behind the numbers. "
                  "Same SQL as `servicescore kpis`, `live` and `tickets`.", "now-7d",
                  ["servicescore", "kpi"])
    board.variables = [
        query_variable("team", "Team", "SELECT DISTINCT team_id FROM team_of "
                       "WHERE team_id IS NOT NULL ORDER BY team_id", multi=True),
        query_variable("engineer", "Engineer", "SELECT engineer_id FROM team_of WHERE "
                       f"{TEAM} ORDER BY engineer_id", multi=True),
    ]
    tickets_id, open_id = 1000, 1001  # fixed below, so links can name them
    to_tickets = _link("Tickets of ${__data.fields.engineer_id}", LIVE_UID,
                       engineer="${__data.fields.engineer_id}", team="$__all")
    to_tickets["url"] += f"&viewPanel=panel-{tickets_id}"
    to_sheet = _link("Appraisal of ${__data.fields.engineer_id}", APPRAISAL_UID,
                     engineer="${__data.fields.engineer_id}")
    team_link = _link("Engineers of ${__data.fields.team_id}", LIVE_UID,
                      team="${__data.fields.team_id}", engineer="$__all")

    board.row("Backlog now (at the end of the range)")
    stat = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value", "graphMode": "none", "textMode": "value_and_name"}
    board.panel("stat", "Open and overdue tickets", [target(backlog_totals_sql())], 6, 6,
                "Open tickets of the selection; overdue: past their priority's resolution "
                "target (calendar time).", options=stat)
    board.panel("stat", "Held events", [target(held_sql())], 6, 6,
                "Events waiting for their ticket-opened (kpis.md: held, not dropped).",
                options=stat, fieldConfig={"defaults": {}, "overrides": [
                    _override("oldest_held_age_s", unit="s")]})
    owner_link = _link("Open tickets of ${__data.fields.engineer_id}", LIVE_UID,
                       engineer="${__data.fields.engineer_id}", team="$__all")
    owner_link["url"] += f"&viewPanel=panel-{open_id}"
    board.panel("table", "Backlog per engineer", [target(backlog_sql("engineer"))], 12, 6,
                "Open tickets by who holds them now ('' = nobody).",
                fieldConfig={"defaults": {}, "overrides": [
                    _override("oldest_open_age_s", unit="s"),
                    _override("oldest_open_since", unit="dateTimeAsIso"),
                    _override("engineer_id", links=[owner_link])]})
    board.panel("table", "Backlog per team", [target(backlog_sql("team"))], 12, 6,
                fieldConfig={"defaults": {}, "overrides": [
                    _override("oldest_open_age_s", unit="s"),
                    _override("oldest_open_since", unit="dateTimeAsIso"),
                    _override("team_id", links=[team_link])]})

    board.row("KPIs in the time range")
    board.panel("table", "KPIs per engineer", [target(engineer_kpis_sql())], 24, 10,
                "Every KPI of kpis.md for [from, to) of the time picker, as `servicescore "
                "kpis` gives them. Click an engineer for the tickets behind the numbers.",
                fieldConfig={"defaults": {"custom": {"filterable": True}},
                             "overrides": kpi_overrides(FIELDS) + [
                                 _override("engineer_id", links=[to_tickets, to_sheet]),
                                 _override("team_id", links=[team_link])]})
    board.panel("table", "KPIs per team", [target(team_kpis_sql())], 24, 6,
                "Each team's samples pooled (not a mean of engineer means).",
                fieldConfig={"defaults": {}, "overrides": kpi_overrides(FIELDS) + [
                    _override("team_id", links=[team_link])]})
    board.panel("table", "Rolling windows", [target(rolling_kpis_sql())], 24, 5,
                "The selection's KPIs over the 24 h, 7 d and 30 d before the end of the range.",
                fieldConfig={"defaults": {}, "overrides": kpi_overrides(FIELDS)})

    board.row("KPIs over time")
    for title, unit, wanted in _over_time_panels():
        targets = [target(family_over_time_sql(family), ref=chr(65 + i), table=False)
                   for i, family in enumerate(sorted({REGISTRY[n].family for n in wanted},
                                                     key=list(AGGREGATES).index))]
        board.panel("timeseries", title, targets, 12, 8,
                    fieldConfig={"defaults": {"unit": _UNITS[unit][0]},
                                 "overrides": kpi_overrides(wanted)},
                    transformations=[{"id": "filterFieldsByName", "options": {"include": {
                        "names": ["time", *wanted]}}}],
                    options={"legend": {"displayMode": "table", "placement": "right"}})

    board.row("Tickets behind the numbers")
    times = [_override(name, unit="dateTimeAsIso") for name in (
        "opened_at", "first_response_at", "episode_start", "resolved_at")]
    tickets = board.panel("table", "Resolutions in the range (drill-down)", [target(tickets_sql())],
                          24, 10, "One row per resolution with every per-ticket fact "
                          "(`servicescore tickets`); inspect the panel to export CSV.",
                          fieldConfig={"defaults": {"custom": {"filterable": True}},
                                       "overrides": times + [
                                           _override("frt_s", unit="s"),
                                           _override("handling_time_s", unit="s"),
                                           _override("handling_time_bh_s", unit="s")]})
    tickets["id"] = tickets_id
    opened = board.panel("table", "Open tickets", [target(open_tickets_sql())], 24, 8,
                         "The backlog's tickets, the oldest due first.",
                         fieldConfig={"defaults": {"custom": {"filterable": True}}, "overrides": [
                             _override("open_since", unit="dateTimeAsIso"),
                             _override("due_at", unit="dateTimeAsIso")]})
    opened["id"] = open_id
    return board.json()


def _over_time_panels() -> list[tuple[str, str, list[str]]]:
    """Panels of one unit each (seconds split by family), over the families with a time
    series: every KPI but the complaint rate and the assessments (periodic scores)."""
    shown = [k for k in REGISTRY.values()
             if k.family != "assessments" and k.name != "complaint_rate"]
    titles = {"count": "Volumes", "ratio": "Rates", "csat": "CSAT", "nps": "NPS"}
    panels = []
    for unit in ("count", "ratio", "csat", "nps"):
        panels.append((titles[unit], unit, [k.name for k in shown if k.unit == unit]))
    for family, title in (("first_responses", "First response time"),
                          ("resolutions", "Handling time"), ("onsite", "Onsite arrival time")):
        panels.append((title, "seconds",
                       [k.name for k in shown if k.unit == "seconds" and k.family == family]))
    return panels


def appraisal_dashboard() -> dict:
    board = Board(APPRAISAL_UID, "servicescore · Appraisal",
                  "Frozen appraisals (appraisal.md): the current close of each period, the "
                  "grade distribution, one engineer's scorecard and trend, and every close.",
                  "now-1y", ["servicescore", "appraisal"])
    board.variables = [
        {"name": "kind", "label": "Period kind", "type": "custom", "query": "month,quarter,year",
         "current": {"text": "month", "value": "month"}, "options": [
             {"text": k, "value": k, "selected": k == "month"}
             for k in ("month", "quarter", "year")], "multi": False, "includeAll": False},
        query_variable("period", "Period", "SELECT DISTINCT period FROM close_status WHERE "
                       f"kind = {KIND} AND status = 'frozen' ORDER BY period DESC", multi=False),
        query_variable("engineer", "Engineer", "SELECT engineer_id FROM appraisals WHERE "
                       f"close_id IN ({current_close_sql()}) ORDER BY engineer_id",
                       multi=False),
    ]
    pick = _link("Scorecard of ${__data.fields.engineer_id}", APPRAISAL_UID,
                 kind="${kind}", period="${period}", engineer="${__data.fields.engineer_id}")
    live_link = _link("Live KPIs of ${__data.fields.engineer_id}", LIVE_UID,
                      engineer="${__data.fields.engineer_id}", team="$__all")
    board.row("Period $period")
    board.panel("table", "Appraisals of $period", [target(appraisals_sql())], 14, 10,
                "The period's current close (superseded closes are not shown).",
                fieldConfig={"defaults": {"custom": {"filterable": True}}, "overrides": [
                    _override("score", decimals=2), _override("bonus", decimals=0),
                    _override("engineer_id", links=[pick, live_link])]})
    board.panel("barchart", "Grade distribution in $period", [target(distribution_sql())], 10, 10,
                options={"xField": "grade_label", "showValue": "always",
                         "legend": {"showLegend": False}})
    board.panel("barchart", "Grades per period", [target(grades_per_period_sql())], 24, 8,
                "Engineers per grade in the current close of the last "
                f"{TREND_PERIODS} periods of this kind up to $period.",
                transformations=[{"id": "groupingToMatrix", "options": {
                    "columnField": "grade_label", "rowField": "period",
                    "valueField": "engineers", "emptyValue": "zero"}}],
                options={"stacking": "normal", "showValue": "auto",
                         "legend": {"showLegend": True, "placement": "right"}})
    board.row("Scorecard of $engineer")
    board.panel("stat", "$engineer in $period", [target(scorecard_sql())], 8, 8,
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/.*/",
                                           "values": True},
                         "textMode": "value_and_name", "colorMode": "none"},
                fieldConfig={"defaults": {}, "overrides": [_override("score", decimals=2)]})
    board.panel("barchart", "Score trend of $engineer", [target(trend_sql())], 16, 8,
                f"The frozen score in the last {TREND_PERIODS} closed periods of this kind.",
                options={"xField": "period", "showValue": "always"},
                fieldConfig={"defaults": {"min": 0, "max": 100}, "overrides": []})
    board.panel("table", "Scorecard lines", [target(scorecard_kpis_sql())], 24, 12,
                "Each KPI of the scheme: frozen value and samples, target and floor, weight "
                "(as in the scheme and after excluded KPIs' weight is shared out), score, and "
                "why a KPI was left out.",
                fieldConfig={"defaults": {}, "overrides": [
                    _override("score", decimals=2), _override("effective_weight", decimals=2)]})
    board.row("Closes")
    board.panel("table", "Closes in the time range", [target(closes_log_sql())], 24, 8,
                "Every committed close, superseded ones too, with the reason.",
                fieldConfig={"defaults": {}, "overrides": []})
    return board.json()


def pipeline_dashboard() -> dict:
    board = Board(PIPELINE_UID, "servicescore · Pipeline health",
                  "The worker's and the sink's metrics (servicescore/core/metrics.py), scraped "
                  "by Prometheus from /metrics.", "now-6h", ["servicescore", "operations"])
    rate = "[$__rate_interval]"
    panels = [
        ("Events read", "ops", [
            (f"sum by (outcome) (rate(servicescore_events_total{rate}))", "{{outcome}}")]),
        ("Dead letters written", "ops", [
            (f"sum by (step, kind) (rate(servicescore_dead_letters_total{rate}))",
             "{{step}} {{kind}}")]),
        ("Facts sent to the sink", "ops", [
            (f"sum by (kind) (rate(servicescore_facts_emitted_total{rate}))", "{{kind}}")]),
        ("Rows inserted into ClickHouse", "rowsps", [
            (f"sum by (table) (rate(servicescore_sink_rows_total{rate}))", "{{table}}")]),
        ("Sink batches and failed inserts", "ops", [
            (f"sum(rate(servicescore_sink_batches_total{rate}))", "batches"),
            (f"sum(rate(servicescore_sink_failures_total{rate}))", "failed inserts")]),
        ("Insert time per batch", "s", [
            ("histogram_quantile(0.5, sum by (le) "
             f"(rate(servicescore_sink_insert_seconds_bucket{rate})))", "p50"),
            ("histogram_quantile(0.99, sum by (le) "
             f"(rate(servicescore_sink_insert_seconds_bucket{rate})))", "p99")]),
        ("Fact age at insert (event to KPI)", "s", [
            ("histogram_quantile(0.9, sum by (le) "
             f"(rate(servicescore_sink_fact_age_seconds_bucket{rate})))", "p90"),
            (f"sum(rate(servicescore_sink_fact_age_seconds_sum{rate})) / "
             f"sum(rate(servicescore_sink_fact_age_seconds_count{rate}))", "mean")]),
        ("KPI freshness (since the last insert)", "s", [
            ("time() - max(servicescore_kpi_last_insert_timestamp_seconds)", "seconds ago")]),
        # every process serving /metrics measures the lag of both groups: one value per
        # partition, not the sum over the processes
        ("Consumer lag", "short", [
            ("sum by (group, topic) (max by (group, topic, partition) "
             "(servicescore_consumer_lag))", "{{group}} {{topic}}")]),
        ("Held events and inconsistent tickets", "short", [
            ("max(servicescore_held_events)", "held events"),
            (f"sum(rate(servicescore_events_held_total{rate}))", "held per second"),
            ("max(servicescore_inconsistent_tickets)", "inconsistent tickets")]),
    ]
    for title, unit, queries in panels:
        targets = [promql(expr, legend, chr(65 + i)) for i, (expr, legend) in enumerate(queries)]
        board.panel("timeseries", title, targets, 12, 8,
                    fieldConfig={"defaults": {"unit": unit}, "overrides": []},
                    options={"legend": {"displayMode": "list", "placement": "bottom"}})
    return board.json()


DASHBOARDS = {"live-kpis.json": live_dashboard, "appraisal.json": appraisal_dashboard,
              "pipeline-health.json": pipeline_dashboard}


def render() -> dict[str, str]:
    """File name -> the dashboard's JSON text, as checked in."""
    return {name: json.dumps(make(), indent=2, ensure_ascii=False) + "\n"
            for name, make in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servicescore.ops.grafana",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=FOLDER)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the files in --out differ from what would be written")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = args.out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"stale: {', '.join(stale)} (run python -m servicescore.ops.grafana)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
