"""The KPIs of kpis.md for a window [from, to), per engineer or per team, from the facts tables.

Each KPI family is one SQL aggregate over one sample view (schemas/kpis.py names it; facts read
with FINAL, so corrected and redelivered facts count once); team KPIs group the same samples by
the roster's team, so they are never means of engineer means. The configuration a formula needs
lives in ClickHouse, written by ``sync_targets``: the SLA targets and clock (the views' column
``within_target``, sql/005) and the review-360 weights, so a Grafana panel and the close read the
same definition. ``compute`` asks all of them in one query (``rows_sql``: the families side by
side, the review360 weighted mean of role means, complaint rate and nulls in SQL), which the
Grafana panels run too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import get_args

from schemas.events import AssessorRole
from schemas.kpis import COUNTS, DIMENSIONS, FIELDS, PRIORITIES, TARGETS, VIEWS
from servicescore.storage.clickhouse import Storage

WINDOW = ("at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') "
          "AND at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')")
_CLOCKS = ("calendar", "business")
_ROLES: tuple[str, ...] = get_args(AssessorRole)


def sync_targets(storage: Storage, frt_targets_s: Mapping[str, float],
                 aht_targets_s: Mapping[str, float], onsite_targets_s: Mapping[str, float],
                 sla_clock: str, review_weights: Mapping[str, float]) -> None:
    """Write the settings' SLA targets, SLA clock and review weights into ClickHouse (tables of
    sql/005), replacing what is there: every KPI reader uses them from then on. A role missing
    from ``review_weights`` is written with weight 0, so dropping a role from the setting
    removes it."""
    if sla_clock not in _CLOCKS:
        raise ValueError(f"sla_clock must be one of {', '.join(_CLOCKS)}, not {sla_clock!r}")
    version = time.time_ns()  # a later sync replaces an earlier one
    targets = {"frt": frt_targets_s, "aht": aht_targets_s, "onsite": onsite_targets_s}
    storage.insert("sla_targets", [[kpi, priority, float(targets[kpi][priority]), sla_clock,
                                    version] for kpi in TARGETS for priority in PRIORITIES],
                   ["kpi", "priority", "target_s", "clock", "version"])
    weights = {**dict.fromkeys(_ROLES, 0.0), **review_weights}
    storage.insert("review_weights", [[role, float(w), version] for role, w in weights.items()],
                   ["assessor_role", "weight", "version"])


def current_targets(storage: Storage) -> dict:
    """What ``sync_targets`` last wrote (kpis.md's defaults before any sync), by its argument
    names."""
    rows = storage.rows("SELECT kpi, priority, target_s, clock FROM sla_targets FINAL")
    out: dict = {f"{kpi}_targets_s": {} for kpi in TARGETS}
    for row in rows:
        out[f"{row['kpi']}_targets_s"][row["priority"]] = row["target_s"]
    out["sla_clock"] = rows[0]["clock"] if rows else None
    out["review_weights"] = {r["assessor_role"]: r["weight"] for r in storage.rows(
        "SELECT assessor_role, weight FROM review_weights FINAL")}
    return out


def _percentiles(col: str, name: str, suffix: str = "") -> str:
    """Mean, median and 90th percentile. Both percentiles come from one
    ``quantilesExactInclusive`` (the same call twice is computed once): one copy of the samples
    sorted once per group, where two ``quantileExactInclusive`` kept and sorted two; the values
    are the same."""
    both = f"quantilesExactInclusive(0.5, 0.9)({col})"
    return (f"avg({col}) AS {name}_avg_s{suffix}, "
            f"{both}[1] AS {name}_p50_s{suffix}, "
            f"{both}[2] AS {name}_p90_s{suffix}")


# KPI family -> the aggregates over its sample view (schemas/kpis.py VIEWS).
_AGGREGATES: dict[str, str] = {
    "resolutions": f"""
        count() AS resolutions, {_percentiles('aht_s', 'aht')},
        {_percentiles('aht_bh_s', 'aht', '_bh')}, avg(within_target) AS aht_sla_rate,
        avg(fcr) AS fcr_rate, avg(repeat_7d) AS repeat_rate_7d,
        avg(repeat_30d) AS repeat_rate_30d""",
    "first_responses": f"""
        count() AS first_responses, {_percentiles('frt_s', 'frt')},
        {_percentiles('frt_bh_s', 'frt', '_bh')}, avg(within_target) AS frt_sla_rate""",
    "onsite": """
        count() AS onsite_visits, avg(onsite_s) AS onsite_arrival_avg_s,
        avg(onsite_bh_s) AS onsite_arrival_avg_s_bh,
        avg(within_target) AS onsite_on_time_rate""",
    "escalations": "count() AS escalations",
    # nps_score, not nps: an alias equal to a column name would shadow it in count(nps).
    "surveys": """
        count() AS surveys, avg(csat) AS csat_avg, avg(csat >= 4) AS csat_positive_rate,
        count(nps) AS nps_responses,
        if(count(nps) = 0, NULL,
           100 * (countIf(nps >= 9) - countIf(nps <= 6)) / count(nps)) AS nps_score""",
    "complaints": "count() AS complaints",
    # A role without a weight row weighs 0 (the join's default), as in review360().
    "assessments": "dimension, assessor_role, count() AS n, avg(score) AS mean, "
                   "any(weight) AS weight",
}
_FROM: dict[str, str] = {
    **VIEWS,
    # The window's resolutions only (sql/007): the repeat flags need the tickets of the window
    # and the 30 days after it, not of all time.
    "resolutions": "resolution_samples_between(from_ms = {from_ms:Int64}, to_ms = {to_ms:Int64})",
    "assessments": f"{VIEWS['assessments']} LEFT JOIN (SELECT assessor_role, weight "
                   "FROM review_weights FINAL) AS w USING (assessor_role)",
}


def sample_source(family: str) -> str:
    """The live samples of a family (its view; assessments with their review weight)."""
    return _FROM[family]


def _sql(family: str, group: str, where: list[str], source=sample_source) -> str:
    by = "grp, dimension, assessor_role" if family == "assessments" else "grp"
    return (f"SELECT {group} AS grp, {_AGGREGATES[family]} FROM {source(family)} "
            f"WHERE {' AND '.join([WINDOW, *where])} GROUP BY {by}")


def empty_kpis() -> dict:
    return {f: (0 if f in COUNTS or f.endswith("_count") else None) for f in FIELDS}


# An aggregate renamed in its family's query (an alias equal to a column name would shadow it).
SQL_NAMES = {"nps": "nps_score"}
COMPLAINT_RATE = "if(resolutions > 0, complaints / resolutions, NULL)"


def _aliases(family: str) -> list[str]:
    """The columns a family's aggregate gives (its ``AS`` names), in order."""
    return re.findall(r"\bAS (\w+)", _AGGREGATES[family])


def _assessment_columns() -> dict[str, str]:
    """Per dimension: its sample count and mean score; review360 the weighted mean of the role
    means over the roles present with a weight above 0, re-normalised (kpis.md)."""
    out = {}
    for dim in DIMENSIONS:
        mine = f"dimension = '{dim}'"
        out[f"assessment_{dim}_count"] = f"sumIf(n, {mine})"
        if dim == "review360":
            weighted = f"{mine} AND weight > 0"
            out[f"assessment_{dim}"] = (f"sumIf(mean * weight, {weighted}) / "
                                        f"nullIf(sumIf(weight, {weighted}), 0)")
        else:
            out[f"assessment_{dim}"] = f"sumIf(mean * n, {mine}) / nullIf(sumIf(n, {mine}), 0)"
    return out


def rows_sql(group: str, where: list[str], source=sample_source) -> str:
    """One query for every KPI field of the registry, one row per ``group`` value (``grp``):
    each family's aggregate over its samples (``_sql``), put side by side by UNION ALL and
    GROUP BY; counts 0 when a family has no sample, NaN (an average of nothing) as null, the
    assessment means, review360 and complaint_rate in SQL. Parameters: ``{from_ms:Int64}``,
    ``{to_ms:Int64}`` and those of ``where``. The Grafana panels run the same text.

    Each family's row is one array of its values (``v``, Float64 or null, counts too: exact up
    to 2^53) with the family's number (``k``), and each field is read back from its family's
    array: planning is most of the cost of a small window, and it grows with the expressions
    of the plan; one column per field in every family's row (mostly NULL) made seven times as
    many as the fields, each cast to a common type."""
    assessed = _assessment_columns()
    where_is: dict[str, tuple[int, int]] = {}  # column -> (family number, 1-based position)
    members = []
    for k, family in enumerate(_AGGREGATES):
        # the assessments' rows are per dimension and role: one row per grp from them
        given, tail = ((assessed, " GROUP BY grp") if family == "assessments"
                       else ({c: c for c in _aliases(family)}, ""))
        for n, column in enumerate(given, 1):
            if column in where_is:
                raise ValueError(f"two KPI families give {column}")
            where_is[column] = (k, n)
        values = ", ".join(given.values())
        members.append(f"SELECT grp, {k} AS k, CAST([{values}], 'Array(Nullable(Float64))') "
                       f"AS v FROM ({_sql(family, group, where, source)}){tail}")
    # one array per family and grp (each family gives one row per grp; none: an empty array,
    # whose elements read as NULL)
    arrays = ", ".join(f"anyIf(v, k = {k}) AS v{k}" for k in range(len(members)))

    def value(column: str) -> str:
        k, n = where_is[column]
        return f"v{k}[{n}]"

    fields = []
    for name in FIELDS:
        column = SQL_NAMES.get(name, name)
        if name == "complaint_rate":
            fields.append(f"{COMPLAINT_RATE} AS complaint_rate")
        elif column not in where_is:
            raise ValueError(f"no aggregate of servicescore.queries.kpis gives {name}")
        elif name in COUNTS:
            fields.append(f"toUInt64(ifNull({value(column)}, 0)) AS {name}")
        else:
            fields.append(f"if(isNaN({value(column)}), NULL, {value(column)}) AS {name}")
    return (f"SELECT grp, {', '.join(fields)} FROM (SELECT grp, {arrays} FROM "
            f"({' UNION ALL '.join(members)}) GROUP BY grp)")


def compute(storage: Storage, from_ms: int, to_ms: int, group: str = "engineer",
            engineer: str | None = None, team: str | None = None,
            source=sample_source) -> list[dict]:
    """KPI objects for the window, one per engineer (or team) with any sample, sorted by id:
    one query. ``source`` gives each family's samples (the live views; the period close passes
    its frozen copy)."""
    return compute_windows(storage, {"": (from_ms, to_ms)}, group, engineer, team, source)[""]


def compute_windows(storage: Storage, windows: Mapping[str, tuple[int, int]],
                    group: str = "engineer", engineer: str | None = None,
                    team: str | None = None, source=sample_source) -> dict[str, list[dict]]:
    """``compute`` for several windows ``{label: (from_ms, to_ms)}`` at once, in one query
    (the live view's rolling 24 h, 7 d and 30 d)."""
    params: dict = {"engineer": engineer or "", "team": team or ""}
    where = []
    if engineer:
        where.append("engineer_id = {engineer:String}")
    if team:
        where.append("team_id = {team:String}")
    grp = "engineer_id" if group == "engineer" else "team_id"
    # One window needs no label column (one step less to plan, and planning is much of a
    # window's cost); several are told apart by theirs.
    labelled = len(windows) > 1
    parts = []
    for n, (label, (from_ms, to_ms)) in enumerate(windows.items()):
        params[f"window_{n}"], params[f"from_ms_{n}"], params[f"to_ms_{n}"] = label, from_ms, to_ms
        sql = (rows_sql(grp, where, source).replace("{from_ms:", f"{{from_ms_{n}:")
               .replace("{to_ms:", f"{{to_ms_{n}:"))
        parts.append(f"SELECT {{window_{n}:String}} AS window, * FROM ({sql})" if labelled
                     else sql)
    sql = " UNION ALL ".join(parts)
    if group == "engineer":  # each engineer's team from the roster, in the same query
        sql = (f"SELECT k.*, ro.team_id AS team_of_grp FROM ({sql}) AS k "
               "LEFT JOIN team_of AS ro ON ro.engineer_id = k.grp")
    found: dict[str, dict] = {label: {} for label in windows}
    only = next(iter(windows), None)
    for row in storage.rows(sql, params):
        found[row.pop("window") if labelled else only][row.pop("grp")] = row
    return {label: _listing(results, group) for label, results in found.items()}


def _listing(results: dict, group: str) -> list[dict]:
    if group == "team":
        return [{"team_id": key, **{f: kpis[f] for f in FIELDS}} for key, kpis in
                sorted(results.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))]
    return [{"engineer_id": key, "team_id": kpis["team_of_grp"], **{f: kpis[f] for f in FIELDS}}
            for key, kpis in sorted(results.items(), key=lambda kv: kv[0] or "")]
