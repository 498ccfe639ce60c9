"""The Grafana dashboards as their users run them.

Every ClickHouse panel's SQL is expanded as the ClickHouse data source plugin expands it
(servicescore/ops/macros.py: $__conditionalAll, template variables, then the back end's macros)
for a concrete time range and variable selection, and run against a real database migrated with
sql/ and filled by the product's own steps with a month and a half of simulated traffic and
three closes. Each panel must give the columns its field config, transformations, axes and links
name; the KPI, backlog, drill-down and appraisal panels must show exactly what the commands show
for the same window. The Prometheus panels may only name metrics servicescore/core/metrics.py
defines. The checked-in JSON is the generator's output, so a KPI changed in the product changes
the dashboards too.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import date
from pathlib import Path

import pytest
import yaml

from appraisal.close import close_period
from appraisal.history import recent_scores
from appraisal.results import appraisals
from appraisal.scheme import default_scheme
from appraisal.scorecard import KpiScore
from schemas.kpis import FIELDS, REGISTRY
from schemas.period import parse_instant
from servicescore.core.metrics import Metrics
from servicescore.dev.simulate import simulate
from servicescore.ops import grafana
from servicescore.ops.macros import ALL, TimeRange, Variable, expand
from servicescore.queries import drilldown, kpis, live
from servicescore.storage.clickhouse import Storage
from tests.contract.harness import Product, same
from tests.oracle import OracleConfig

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
TZ = "Asia/Shanghai"
# The time picker on "2026-10-01 to 2026-11-30" (Grafana's range ends at the last millisecond).
FROM_MS = parse_instant("2026-10-01", TZ)
TO_MS = parse_instant("2026-12-01", TZ) - 1
DAY_MS = 86_400_000
RANGE = TimeRange(FROM_MS, TO_MS, DAY_MS)


def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))}


BOARDS = dashboards()
BY_UID = {board["uid"]: board for board in BOARDS.values()}


def panels(board: dict) -> list[dict]:
    return [p for p in board["panels"] if p["type"] != "row"]


def clickhouse_panels(board: dict) -> list[dict]:
    return [p for p in panels(board) if p["datasource"] == grafana.CLICKHOUSE]


def panel(board: dict, title: str) -> dict:
    (found,) = [p for p in panels(board) if p["title"] == title]
    return found


# ------------------------------------------------------------------------------ the data


@pytest.fixture(scope="module")
def db(chdb_dsn):
    """Six weeks of traffic of 8 engineers in two teams through the product's steps; October
    closed, then November closed early, then October superseded."""
    storage = Storage(chdb_dsn, f"grafana_{uuid.uuid4().hex[:12]}")
    storage.migrate()
    traffic = simulate(date(2026, 10, 1), 45, 8, seed=3)
    roster = {e.engineer_id: e.team_id for e in traffic.roster}
    Product(storage, OracleConfig(), roster).send(traffic.records)
    scheme = default_scheme()
    close_period(storage, "2026-10", scheme, parse_instant("2026-11-09", TZ))
    close_period(storage, "2026-11", scheme, parse_instant("2026-11-20", TZ), early=True)
    close_period(storage, "2026-10", scheme, parse_instant("2026-11-21", TZ),
                 supersede="late assessments")
    storage.roster = roster  # the test's own record of who is in which team
    yield storage
    storage.command(f"DROP DATABASE IF EXISTS {storage.database}")


def live_selections(db) -> dict[str, dict[str, Variable]]:
    engineers = tuple(sorted(db.roster))
    teams = tuple(sorted(set(db.roster.values())))
    team = teams[0]
    return {
        "all": {"team": Variable([ALL], teams), "engineer": Variable([ALL], engineers)},
        "two engineers": {"team": Variable([ALL], teams),
                          "engineer": Variable(list(engineers[1:3]), engineers)},
        "one team": {"team": Variable([team], teams), "engineer": Variable(
            [ALL], tuple(e for e in engineers if db.roster[e] == team))},
    }


def appraisal_selection(db) -> dict[str, Variable]:
    return {"kind": Variable("month"), "period": Variable("2026-11"),
            "engineer": Variable(sorted(db.roster)[0])}


def run(db, query: str, variables: dict[str, Variable], time: TimeRange = RANGE) -> list[dict]:
    return db.rows(expand(query, time, variables))


def results(db, found: dict, variables: dict[str, Variable]) -> list[list[dict]]:
    return [run(db, target["rawSql"], variables) for target in found["targets"]]


def rows_of(db, board: dict, title: str, variables: dict[str, Variable]) -> list[dict]:
    (rows,) = results(db, panel(board, title), variables)
    return rows


# ------------------------------------------------------------------ what a panel refers to

DATA_FIELD = re.compile(r"\$\{__data\.fields\.(\w+)\}")


def referenced_columns(found: dict) -> set[str]:
    """Every column the panel's field config, transformations, axis and links name."""
    names = set()
    for override in found["fieldConfig"].get("overrides", []):
        assert override["matcher"]["id"] == "byName", override
        names.add(override["matcher"]["options"])
        for prop in override["properties"]:
            if prop["id"] == "links":
                for link in prop["value"]:
                    names |= set(DATA_FIELD.findall(link["url"] + link["title"]))
    for step in found.get("transformations", []):
        options = step["options"]
        if step["id"] == "filterFieldsByName":
            names |= set(options["include"]["names"])
        elif step["id"] == "groupingToMatrix":
            names |= {options["columnField"], options["rowField"], options["valueField"]}
        else:
            raise AssertionError(f"the test does not read transformation {step['id']} yet")
    if "xField" in found["options"]:
        names.add(found["options"]["xField"])
    return names


# ------------------------------------------------------------------------------- the tests


def test_the_checked_in_dashboards_are_the_generators_output():
    """`python -m servicescore.ops.grafana` rewrites them: a KPI, a query or a unit changed in
    the product is a stale dashboard here until regenerated."""
    rendered = grafana.render()
    on_disk = {name: (DEPLOY / "grafana" / "dashboards" / name).read_text(encoding="utf-8")
               for name in BOARDS}
    assert on_disk == rendered
    assert grafana.main(["--check"]) == 0


# The plugin's own examples (its CHDatasource and macros tests) and our variables' forms.
T = TimeRange(1_415_792_726_371, 1_447_328_726_371, 300_000)
EXPANSIONS = [
    ("where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal);",
     {"fieldVal": Variable(ALL)}, "where 1=1;"),
    ("where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal) and "
     "$__conditionalAll(fieldVal in ($fieldVal2), $fieldVal2);",
     {"fieldVal": Variable(["val1", "val2"]), "fieldVal2": Variable([ALL])},
     "where fieldVal in ('val1','val2') and 1=1;"),
    # only $name or ${name} is recognised as the variable: a format there keeps the condition
    ("$__conditionalAll(e IN (${e:singlequote}), ${e:singlequote})", {"e": Variable([ALL], ("a",))},
     "e IN ('a')"),
    # singlequote escapes a quote with a backslash, as ClickHouse reads it
    ("$__conditionalAll(e IN (${e:singlequote}), $e)", {"e": Variable(["O'Brien", "b"])},
     "e IN ('O\\'Brien','b')"),
    ("x = ${p:sqlstring} AND y = $q", {"p": Variable("it's"), "q": Variable("raw")},
     "x = 'it''s' AND y = raw"),
    ("$__timeFilter(time)", {},
     "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"),
    ("$__timeFilter_ms(time)", {}, "time >= fromUnixTimestamp64Milli(1415792726371) AND "
     "time <= fromUnixTimestamp64Milli(1447328726371)"),
    ("$__fromTime < $__toTime", {}, "toDateTime(1415792726) < toDateTime(1447328726)"),
    ("$__fromTime_ms", {}, "fromUnixTimestamp64Milli(1415792726371)"),
    ("$__timeInterval(at) AS t, $__interval_s", {},
     "toStartOfInterval(toDateTime(at), INTERVAL 300 second) AS t, 300"),
    ("$__timeInterval(toDateTime(a, 'UTC'))", {},
     "toStartOfInterval(toDateTime(toDateTime(a, 'UTC')), INTERVAL 300 second)"),
    ("${__from} ${__to}", {}, "1415792726371 1447328726371"),
    ("$__dateFilter(d)", {}, "d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')"),
    ("$__timeGroup(t, '5m')", {}, "toStartOfInterval(toDateTime(t), INTERVAL 300 second)"),
]


@pytest.mark.parametrize(("sql", "variables", "expanded"), EXPANSIONS)
def test_macros_expand_as_the_plugin_does(sql, variables, expanded):
    assert expand(sql, T, variables) == expanded


def test_the_kpi_panels_run_the_products_kpi_queries():
    """No KPI formula is restated: each family's aggregate of servicescore/queries/kpis.py
    appears verbatim in the KPI tables, over the registry's sample view."""
    live_board = BY_UID[grafana.LIVE_UID]
    for title in ("KPIs per engineer", "KPIs per team", "Rolling windows"):
        query = panel(live_board, title)["targets"][0]["rawSql"]
        for family, aggregate in kpis._AGGREGATES.items():
            assert " ".join(aggregate.split()) in query, (title, family)
            # the window's parameters (of resolution_samples_between) bound to Grafana's range
            source = re.sub(r"\\\{\w+:Int64\\\}", r".+?",
                            re.escape(f"FROM {kpis.sample_source(family)} WHERE"))
            assert re.search(source, query), (title, family)


@pytest.mark.parametrize("selection", ["all", "two engineers", "one team"])
def test_every_live_panel_runs_and_gives_the_columns_it_names(db, selection):
    variables = live_selections(db)[selection]
    for found in clickhouse_panels(BY_UID[grafana.LIVE_UID]):
        frames = results(db, found, variables)
        columns = {c for rows in frames for row in rows[:1] for c in row}
        assert all(frames), f"{found['title']}: no rows for {selection}"
        missing = referenced_columns(found) - columns
        assert not missing, f"{found['title']} names {missing}, its SQL gives {columns}"


def test_every_appraisal_panel_runs_and_gives_the_columns_it_names(db):
    variables = appraisal_selection(db)
    for found in clickhouse_panels(BY_UID[grafana.APPRAISAL_UID]):
        frames = results(db, found, variables)
        assert all(frames), f"{found['title']}: no rows"
        columns = {c for rows in frames for c in rows[0]}
        missing = referenced_columns(found) - columns
        assert not missing, f"{found['title']} names {missing}, its SQL gives {columns}"


def test_time_series_panels_bucket_by_the_panels_interval(db):
    """$__timeInterval(at) gives the time column: one point per day here, inside the range."""
    variables = live_selections(db)["all"]
    series = [p for p in clickhouse_panels(BY_UID[grafana.LIVE_UID]) if p["type"] == "timeseries"]
    assert series
    for found in series:
        for rows in results(db, found, variables):
            stamps = [int(row["time"].timestamp() * 1000) for row in rows]
            assert stamps == sorted(set(stamps)), found["title"]
            assert all(s % DAY_MS == 0 and FROM_MS - DAY_MS < s <= TO_MS for s in stamps)
    volumes = panel(BY_UID[grafana.LIVE_UID], "Volumes")
    resolutions = next(rows for rows in results(db, volumes, variables) if "resolutions" in rows[0])
    total = kpis.compute(db, FROM_MS, TO_MS)
    assert sum(r["resolutions"] for r in resolutions) == sum(r["resolutions"] for r in total)


def test_the_variables_offer_the_teams_engineers_and_closed_periods(db):
    values = {}
    for board, variables in ((BY_UID[grafana.LIVE_UID], live_selections(db)["all"]),
                             (BY_UID[grafana.APPRAISAL_UID], appraisal_selection(db))):
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                values[variable["name"]] = [next(iter(r.values())) for r in run(
                    db, variable["query"], variables)]
    assert values["team"] == sorted(set(db.roster.values()))
    assert sorted(values["engineer"]) == sorted(db.roster)
    assert values["period"] == ["2026-11", "2026-10"]


@pytest.mark.parametrize("selection", ["all", "two engineers", "one team"])
def test_the_kpi_tables_show_what_servicescore_kpis_shows(db, selection):
    variables = live_selections(db)[selection]
    board = BY_UID[grafana.LIVE_UID]
    chosen = variables["engineer"].value()
    team = None if variables["team"].is_all else variables["team"].current[0]
    want = {r["engineer_id"]: r for r in kpis.compute(db, FROM_MS, TO_MS, team=team)
            if r["engineer_id"] in chosen}
    got = {r["engineer_id"]: r for r in rows_of(db, board, "KPIs per engineer", variables)}
    assert set(got) == set(want) and want
    for engineer, row in want.items():
        assert list(got[engineer]) == ["engineer_id", "team_id", *FIELDS]
        wrong = {f: (v, got[engineer][f]) for f, v in row.items() if not same(v, got[engineer][f])}
        assert not wrong, f"{engineer}: (servicescore kpis, dashboard) {wrong}"
    if selection != "two engineers":
        teams = {r["team_id"]: r for r in kpis.compute(db, FROM_MS, TO_MS, group="team",
                                                       team=team)}
        shown = {r["team_id"]: r for r in rows_of(db, board, "KPIs per team", variables)}
        assert set(shown) == set(teams)
        for key, row in teams.items():
            assert all(same(v, shown[key][f]) for f, v in row.items()), key


def test_the_rolling_windows_end_at_the_end_of_the_range(db):
    engineer = sorted(db.roster)[0]
    variables = {**live_selections(db)["all"], "engineer": Variable([engineer])}
    # the data ends mid-November: a range ending then has every window filled
    time = TimeRange(FROM_MS, parse_instant("2026-11-14", TZ), DAY_MS)
    (found,) = panel(BY_UID[grafana.LIVE_UID], "Rolling windows")["targets"]
    got = {r["window"]: r for r in run(db, found["rawSql"], variables, time)}
    assert list(got) == list(grafana.ROLLING)
    for label, span in grafana.ROLLING.items():
        (want,) = kpis.compute(db, time.to_ms - span, time.to_ms, engineer=engineer)
        assert all(same(want[f], got[label][f]) for f in FIELDS), label


@pytest.mark.parametrize("selection", ["all", "one team"])
def test_the_backlog_panels_show_what_servicescore_live_shows(db, selection):
    variables = live_selections(db)[selection]
    board = BY_UID[grafana.LIVE_UID]
    team = None if variables["team"].is_all else variables["team"].current[0]
    want = [r for r in live.backlog(db, TO_MS) if team in (None, r["team_id"])]
    got = rows_of(db, board, "Backlog per engineer", variables)
    by_owner = lambda r: r["engineer_id"]  # noqa: E731
    assert sorted(got, key=by_owner) == sorted(want, key=by_owner)
    (totals,) = rows_of(db, board, "Open and overdue tickets", variables)
    assert totals == {"open_tickets": sum(r["open_tickets"] for r in want),
                      "overdue_tickets": sum(r["overdue_tickets"] for r in want)}
    tickets = rows_of(db, board, "Open tickets", variables)
    assert len(tickets) == totals["open_tickets"]
    assert sum(t["overdue"] for t in tickets) == totals["overdue_tickets"]
    teams = {r["team_id"]: r for r in live.backlog(db, TO_MS, group="team")}
    for row in rows_of(db, board, "Backlog per team", variables):
        assert row == teams[row["team_id"]]


def test_the_drilldown_panel_is_servicescore_tickets(db):
    engineer = sorted(db.roster)[1]
    variables = {**live_selections(db)["all"], "engineer": Variable([engineer])}
    got = rows_of(db, BY_UID[grafana.LIVE_UID], "Resolutions in the range (drill-down)",
                  variables)
    assert got == drilldown.resolutions(db, FROM_MS, TO_MS, engineer=engineer) and got


def test_the_appraisal_panels_show_the_current_close(db):
    variables = appraisal_selection(db)
    board = BY_UID[grafana.APPRAISAL_UID]
    engineer = variables["engineer"].current
    frozen = {r["engineer_id"]: r for r in appraisals(db, "2026-11", TZ)}
    shown = {r["engineer_id"]: r for r in rows_of(db, board, "Appraisals of $period", variables)}
    assert set(shown) == set(frozen)
    for key, row in frozen.items():
        assert (shown[key]["grade"], shown[key]["grade_label"], shown[key]["role"]) == (
            row["grade"], row["grade_label"], row["role"])
        assert same(None if row["score"] is None else float(row["score"]), shown[key]["score"])
    distribution = rows_of(db, board, "Grade distribution in $period", variables)
    assert sum(r["engineers"] for r in distribution) == len(frozen)
    # October's superseded close is not counted, its current one is
    per_period = rows_of(db, board, "Grades per period", variables)
    october = {r["engineer_id"] for r in appraisals(db, "2026-10", TZ)}
    assert {p: sum(r["engineers"] for r in per_period if r["period"] == p)
            for p in ("2026-10", "2026-11")} == {"2026-10": len(october),
                                                 "2026-11": len(frozen)}
    lines = rows_of(db, board, "Scorecard lines", variables)
    want = frozen[engineer]["kpis"]
    assert [line["kpi"] for line in lines] == [k["kpi"] for k in want]
    assert list(lines[0]) == [f.name for f in KpiScore.__dataclass_fields__.values()]
    for line, k in zip(lines, want, strict=True):
        assert same(None if k["value"] is None else float(k["value"]), line["value"])
        assert (line["samples"], line["included"], line["reason"]) == (
            k["samples"], k["included"], k["reason"])
    trend = rows_of(db, board, "Score trend of $engineer", variables)
    history = recent_scores(db, "2026-11", grafana.TREND_PERIODS, engineer)
    assert [(r["period"], r["score"]) for r in trend] == [
        (p, float(s)) for p, s in zip(history["periods"], history["scores"][engineer],
                                      strict=True) if s is not None]
    log = rows_of(db, board, "Closes in the time range", variables)
    assert [(r["period"], r["status"]) for r in log] == [
        ("2026-10", "frozen"), ("2026-11", "frozen"), ("2026-10", "superseded")]


# ---------------------------------------------------------------------- links, sources


def test_links_open_existing_dashboards_variables_and_panels():
    for board in BOARDS.values():
        for found in panels(board):
            for override in found["fieldConfig"].get("overrides", []):
                for prop in override["properties"]:
                    if prop["id"] != "links":
                        continue
                    for link in prop["value"]:
                        target = re.match(r"^/d/([\w-]+)\?(.*)$", link["url"])
                        assert target, link
                        goal = BY_UID[target[1]]
                        names = {v["name"] for v in goal["templating"]["list"]}
                        for part in target[2].split("&"):
                            if part.startswith("var-"):
                                assert part[4:].split("=")[0] in names, link
                            elif part.startswith("viewPanel=panel-"):
                                assert int(part.removeprefix("viewPanel=panel-")) in {
                                    p["id"] for p in panels(goal)}, link
                            else:
                                assert part == "${__url_time_range}", link


def test_panels_use_the_provisioned_data_sources():
    provisioned = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" /
                                  "servicescore.yml").read_text(encoding="utf-8"))
    sources = {(d["type"], d["uid"]) for d in provisioned["datasources"]}
    for board in BOARDS.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]
        for found in panels(board):
            for target in found["targets"]:
                assert (target["datasource"]["type"], target["datasource"]["uid"]) in sources
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert (variable["datasource"]["type"], variable["datasource"]["uid"]) in sources


def test_every_registry_kpi_has_its_unit_in_the_kpi_tables():
    found = panel(BY_UID[grafana.LIVE_UID], "KPIs per engineer")
    units = {o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
             for o in found["fieldConfig"]["overrides"]}
    assert set(FIELDS) <= set(units)
    assert units["frt_sla_rate"]["unit"] == "percentunit"
    assert units["aht_avg_s"]["unit"] == "s"
    for name in FIELDS:
        assert REGISTRY[name].samples in units[name]["description"]


# ------------------------------------------------------------------------------ Prometheus

PROMQL_WORDS = {"sum", "max", "rate", "histogram_quantile", "time", "by"}


def exposed_metrics() -> dict[str, set[str]]:
    """Every series name /metrics can expose, with its labels."""
    metrics = Metrics()
    names: dict[str, set[str]] = {}
    for slot in Metrics.__slots__:
        if slot in ("registry", "sources"):  # not metrics: where they live, and other processes
            continue
        metric = getattr(metrics, slot)
        labels = set(metric._labelnames)
        suffixes = {"counter": ["_total"], "gauge": [""],
                    "histogram": ["_bucket", "_sum", "_count"]}[metric._type]
        for suffix in suffixes:
            names[metric._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def test_prometheus_panels_name_metrics_the_services_expose():
    exposed = exposed_metrics()
    exprs = [t["expr"] for board in BOARDS.values() for found in panels(board)
             for t in found["targets"] if t["datasource"] == grafana.PROMETHEUS]
    assert len(exprs) >= 10
    used = set()
    for expr in exprs:
        bare = expr.replace("[$__rate_interval]", "")
        groups = re.findall(r"\bby \(([^)]*)\)", bare)
        bare = re.sub(r"\bby \([^)]*\)", "by", bare)
        words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare))
        metrics = words - PROMQL_WORDS
        assert metrics and metrics <= set(exposed), f"{expr}: unknown {metrics - set(exposed)}"
        labels = set().union(*(exposed[m] for m in metrics))
        for group in groups:
            named = {label.strip() for label in group.split(",")}
            assert named <= labels, f"{expr}: labels {named - labels} not on {metrics}"
        used |= metrics
    # the families a person watches: input, dead letters, the sink, lag, freshness
    for family in ("servicescore_events_total", "servicescore_dead_letters_total",
                   "servicescore_sink_rows_total", "servicescore_consumer_lag",
                   "servicescore_kpi_last_insert_timestamp_seconds"):
        assert family in used
