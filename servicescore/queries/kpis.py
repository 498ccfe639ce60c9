"""The KPIs of kpis.md for a window [from, to), per engineer or per team, from the facts tables.

Each KPI family is one SQL aggregate over one sample view of sql/003_sample_views.sql (facts
read with FINAL, so corrected and redelivered facts count once); team KPIs group the same
samples by the roster's team, so they are never means of engineer means. The small remainder
(review360 weighting, complaint rate, nulls) is Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from servicescore.storage.clickhouse import Storage

DIMENSIONS = ("compliance", "attitude", "collaboration", "training", "knowledge", "review360")
COUNTS = ("resolutions", "first_responses", "escalations", "onsite_visits", "surveys",
          "complaints", "nps_responses")
FIELDS = (
    "resolutions", "first_responses", "frt_avg_s", "frt_p50_s", "frt_p90_s", "frt_sla_rate",
    "frt_avg_s_bh", "frt_p50_s_bh", "frt_p90_s_bh",
    "aht_avg_s", "aht_p50_s", "aht_p90_s", "aht_avg_s_bh", "aht_p50_s_bh", "aht_p90_s_bh",
    "fcr_rate", "repeat_rate_7d", "repeat_rate_30d", "escalations",
    "onsite_visits", "onsite_arrival_avg_s", "onsite_arrival_avg_s_bh", "onsite_on_time_rate",
    "surveys", "csat_avg", "csat_positive_rate", "nps", "nps_responses",
    "complaints", "complaint_rate",
    *(f for d in DIMENSIONS for f in (f"assessment_{d}", f"assessment_{d}_count")),
)

_WINDOW = ("at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') "
           "AND at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')")


@dataclass(frozen=True)
class KpiOptions:
    frt_targets_s: dict[str, float]
    onsite_targets_s: dict[str, float]
    sla_clock: str = "calendar"
    review_weights: dict[str, float] | None = None


def _percentiles(col: str, name: str, suffix: str = "") -> str:
    return (f"avg({col}) AS {name}_avg_s{suffix}, "
            f"quantileExactInclusive(0.5)({col}) AS {name}_p50_s{suffix}, "
            f"quantileExactInclusive(0.9)({col}) AS {name}_p90_s{suffix}")


def _target(targets: dict[str, float]) -> str:
    cases = ", ".join(f"priority = '{p}', {float(targets[p])}" for p in ("P1", "P2", "P3", "P4"))
    return f"multiIf({cases}, 0)"


def _queries(opts: KpiOptions) -> dict[str, tuple[str, str]]:
    """KPI family -> (sample view of sql/003_sample_views.sql, the aggregates over it)."""
    bh = "_bh" if opts.sla_clock == "business" else ""
    return {
        "resolutions": ("resolution_samples", f"""
            count() AS resolutions, {_percentiles('aht_s', 'aht')},
            {_percentiles('aht_bh_s', 'aht', '_bh')},
            avg(fcr) AS fcr_rate, avg(repeat_7d) AS repeat_rate_7d,
            avg(repeat_30d) AS repeat_rate_30d"""),
        "first_responses": ("first_response_samples", f"""
            count() AS first_responses, {_percentiles('frt_s', 'frt')},
            {_percentiles('frt_bh_s', 'frt', '_bh')},
            avg(frt{bh}_s <= {_target(opts.frt_targets_s)}) AS frt_sla_rate"""),
        "onsite": ("onsite_samples", f"""
            count() AS onsite_visits, avg(onsite_s) AS onsite_arrival_avg_s,
            avg(onsite_bh_s) AS onsite_arrival_avg_s_bh,
            avg(onsite{bh}_s <= {_target(opts.onsite_targets_s)}) AS onsite_on_time_rate"""),
        "escalations": ("escalation_samples", "count() AS escalations"),
        # nps_score, not nps: an alias equal to a column name would shadow it in count(nps).
        "surveys": ("survey_samples", """
            count() AS surveys, avg(csat) AS csat_avg, avg(csat >= 4) AS csat_positive_rate,
            count(nps) AS nps_responses,
            if(count(nps) = 0, NULL,
               100 * (countIf(nps >= 9) - countIf(nps <= 6)) / count(nps)) AS nps_score"""),
        "complaints": ("complaint_samples", "count() AS complaints"),
        "assessments": ("assessment_samples",
                        "dimension, assessor_role, count() AS n, avg(score) AS mean"),
    }


def _sql(view: str, aggregates: str, group: str, where: list[str]) -> str:
    by = "grp, dimension, assessor_role" if view == "assessment_samples" else "grp"
    return (f"SELECT {group} AS grp, {aggregates} FROM {view} "
            f"WHERE {' AND '.join([_WINDOW, *where])} GROUP BY {by}")


def empty_kpis() -> dict:
    return {f: (0 if f in COUNTS or f.endswith("_count") else None) for f in FIELDS}


def compute(storage: Storage, from_ms: int, to_ms: int, opts: KpiOptions,
            group: str = "engineer", engineer: str | None = None,
            team: str | None = None) -> list[dict]:
    """KPI objects for the window, one per engineer (or team) with any sample, sorted by id."""
    params = {"from_ms": from_ms, "to_ms": to_ms, "engineer": engineer or "", "team": team or ""}
    results: dict[str | None, dict] = {}
    assessments: dict[str | None, list[dict]] = {}
    where = []
    if engineer:
        where.append("engineer_id = {engineer:String}")
    if team:
        where.append("team_id = {team:String}")
    grp = "engineer_id" if group == "engineer" else "team_id"
    for family, (view, aggregates) in _queries(opts).items():
        for row in storage.rows(_sql(view, aggregates, grp, where), params):
            key = row.pop("grp")
            if "nps_score" in row:
                row["nps"] = row.pop("nps_score")
            if family == "assessments":
                assessments.setdefault(key, []).append(row)
                results.setdefault(key, empty_kpis())
            else:
                results.setdefault(key, empty_kpis()).update(_clean(row))
    weights = opts.review_weights or {}
    for key, rows in assessments.items():
        results[key].update(assessment_kpis(rows, weights))
    for kpis in results.values():
        kpis["complaint_rate"] = (kpis["complaints"] / kpis["resolutions"]
                                  if kpis["resolutions"] else None)
    return _listing(storage, results, group)


def assessment_kpis(rows: list[dict], weights: dict[str, float]) -> dict:
    """Mean score per dimension; review360 weighted over the assessor roles present."""
    out = {}
    for dim in DIMENSIONS:
        mine = [r for r in rows if r["dimension"] == dim]
        count = sum(r["n"] for r in mine)
        out[f"assessment_{dim}_count"] = count
        if dim == "review360":
            out[f"assessment_{dim}"] = review360({r["assessor_role"]: r["mean"] for r in mine},
                                                 weights)
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
