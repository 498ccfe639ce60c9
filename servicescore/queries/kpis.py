"""The KPIs of kpis.md for a window [from, to), per engineer or per team, from the facts tables.

Each KPI family is one SQL aggregate over one sample view (schemas/kpis.py names it; facts read
with FINAL, so corrected and redelivered facts count once); team KPIs group the same samples by
the roster's team, so they are never means of engineer means. The configuration a formula needs
lives in ClickHouse, written by ``sync_targets``: the SLA targets and clock (the views' column
``within_target``, sql/005) and the review-360 weights, so a Grafana panel and the close read the
same definition. The small remainder (the review360 weighted mean of role means, complaint
rate, nulls) is Python.
"""

from __future__ import annotations

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
    return (f"avg({col}) AS {name}_avg_s{suffix}, "
            f"quantileExactInclusive(0.5)({col}) AS {name}_p50_s{suffix}, "
            f"quantileExactInclusive(0.9)({col}) AS {name}_p90_s{suffix}")


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


def compute(storage: Storage, from_ms: int, to_ms: int, group: str = "engineer",
            engineer: str | None = None, team: str | None = None,
            source=sample_source) -> list[dict]:
    """KPI objects for the window, one per engineer (or team) with any sample, sorted by id.
    ``source`` gives each family's samples (the live views; the period close passes its frozen
    copy)."""
    params = {"from_ms": from_ms, "to_ms": to_ms, "engineer": engineer or "", "team": team or ""}
    results: dict[str | None, dict] = {}
    assessments: dict[str | None, list[dict]] = {}
    where = []
    if engineer:
        where.append("engineer_id = {engineer:String}")
    if team:
        where.append("team_id = {team:String}")
    grp = "engineer_id" if group == "engineer" else "team_id"
    for family in _AGGREGATES:
        for row in storage.rows(_sql(family, grp, where, source), params):
            key = row.pop("grp")
            if "nps_score" in row:
                row["nps"] = row.pop("nps_score")
            if family == "assessments":
                assessments.setdefault(key, []).append(row)
                results.setdefault(key, empty_kpis())
            else:
                results.setdefault(key, empty_kpis()).update(_clean(row))
    for key, rows in assessments.items():
        results[key].update(assessment_kpis(rows))
    for kpis in results.values():
        kpis["complaint_rate"] = (kpis["complaints"] / kpis["resolutions"]
                                  if kpis["resolutions"] else None)
    return _listing(storage, results, group)


def assessment_kpis(rows: list[dict]) -> dict:
    """Mean score per dimension; review360 weighted over the assessor roles present. ``rows``:
    per dimension and assessor role, the count ``n``, the ``mean`` and the role's ``weight``."""
    out = {}
    for dim in DIMENSIONS:
        mine = [r for r in rows if r["dimension"] == dim]
        count = sum(r["n"] for r in mine)
        out[f"assessment_{dim}_count"] = count
        if dim == "review360":
            out[f"assessment_{dim}"] = review360({r["assessor_role"]: r["mean"] for r in mine},
                                                 {r["assessor_role"]: r["weight"] for r in mine})
        else:
            out[f"assessment_{dim}"] = (sum(r["mean"] * r["n"] for r in mine) / count
                                        if count else None)
    return out


def review360(role_means: dict[str, float], weights: dict[str, float]) -> float | None:
    """Weighted mean of the per-role means, re-normalised over the roles present."""
    present = {role: w for role, w in weights.items() if role in role_means and w > 0}
    total = sum(present.values())
    if total == 0:
        return None
    return sum(role_means[role] * w for role, w in present.items()) / total


def _clean(row: dict) -> dict:
    """ClickHouse returns NaN for an average of nothing; the KPI is null then."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


def _listing(storage: Storage, results: dict, group: str) -> list[dict]:
    if group == "team":
        return [{"team_id": key, **kpis} for key, kpis in
                sorted(results.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))]
    teams = {r["engineer_id"]: r["team_id"] for r in
             storage.rows("SELECT engineer_id, team_id FROM team_of")}
    return [{"engineer_id": key, "team_id": teams.get(key), **kpis}
            for key, kpis in sorted(results.items(), key=lambda kv: kv[0] or "")]
