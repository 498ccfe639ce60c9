"""Reading closed periods: the frozen appraisals, the adjustments later events would make, and
what-if scoring with any scheme (appraisal.md "Outputs", "Period close", "Trying a scheme").
Nothing here writes."""

from __future__ import annotations

import orjson

from appraisal.close import current_close, scorecards_of
from appraisal.scheme import Scheme
from schemas.period import format_instant, parse_period
from servicescore.queries import kpis
from servicescore.storage.clickhouse import Storage

_APPRAISALS = """
SELECT a.engineer_id AS engineer_id, a.role AS role, a.period AS period, a.score AS score,
       a.grade AS grade, a.grade_label AS grade_label, a.bonus AS bonus, a.flags AS flags,
       a.kpis AS kpis, a.scheme_version AS scheme_version,
       toUnixTimestamp64Milli(a.closed_at) AS closed_at, a.content_hash AS content_hash,
       c.status AS status, a.close_id AS close_id
FROM appraisals AS a
INNER JOIN (SELECT close_id, status FROM close_status WHERE period = {period:String}) AS c
    ON c.close_id = a.close_id
WHERE a.period = {period:String} {only_current}
ORDER BY c.status = 'superseded', a.closed_at DESC, a.engineer_id
"""


def appraisals(storage: Storage, period: str, timezone: str,
               with_superseded: bool = False) -> list[dict]:
    """The frozen results of ``period`` (its current close; earlier ones too on request), with
    the fields of appraisal.md."""
    current = current_close(storage, period)
    if current is None:
        return []
    # The current close only, by its id: two closes racing (two services) leave one current.
    sql = _APPRAISALS.replace("{only_current}",
                              "" if with_superseded else "AND a.close_id = {close_id:String}")
    rows = storage.rows(sql, {"period": period, "close_id": current["close_id"]})
    for row in rows:
        row["kpis"] = orjson.loads(row["kpis"])
        row["flags"] = list(row["flags"])
        row["closed_at"] = format_instant(row["closed_at"], timezone)
    return rows


def adjustments(storage: Storage, period_name: str) -> list[dict]:
    """Per engineer of the current close: each frozen KPI value beside its value now, and the
    score, grade and bonus the values now would give under the close's own scheme."""
    close = current_close(storage, period_name)
    if close is None:
        return []
    scheme = Scheme.model_validate_json(close["scheme"])
    period = parse_period(period_name, scheme.timezone)
    live = {r["engineer_id"]: r for r in kpis.compute(storage, period.start_ms, period.end_ms)}
    now = {c.engineer_id: c for c in scorecards_of(storage, live, period, scheme)}
    out = []
    for frozen in appraisals(storage, period_name, scheme.timezone):
        card = now[frozen["engineer_id"]].to_json() if frozen["engineer_id"] in now else None
        changed = [{"kpi": k["kpi"], "frozen": k["value"],
                    "now": _value(live.get(frozen["engineer_id"]), k["kpi"])}
                   for k in frozen["kpis"]
                   if _differs(k["value"], _value(live.get(frozen["engineer_id"]), k["kpi"]))]
        out.append({"engineer_id": frozen["engineer_id"], "role": frozen["role"],
                    "frozen_score": frozen["score"], "frozen_grade": frozen["grade"],
                    "frozen_bonus": frozen["bonus"],
                    "score_now": card and card["score"], "grade_now": card and card["grade"],
                    "bonus_now": card and card["bonus"], "changed": changed})
    return out


def what_if(storage: Storage, period_name: str, scheme: Scheme) -> list[dict]:
    """Scores the period (open or closed) with ``scheme`` from the live KPIs; freezes nothing.
    Each row carries the frozen result beside it when the period is closed."""
    period = parse_period(period_name, scheme.timezone)
    live = {r["engineer_id"]: r for r in kpis.compute(storage, period.start_ms, period.end_ms)}
    frozen = {r["engineer_id"]: r for r in appraisals(storage, period_name, scheme.timezone)}
    out = []
    for card in scorecards_of(storage, live, period, scheme):
        shown = card.to_json()
        held = frozen.get(card.engineer_id)
        out.append({**shown, "period": period_name, "scheme_version": scheme.version,
                    "frozen_score": held and held["score"], "frozen_grade": held and held["grade"],
                    "frozen_bonus": held and held["bonus"]})
    return out


def _value(row: dict | None, kpi: str):
    return None if row is None else row.get(kpi)


def _differs(frozen, now) -> bool:
    """Frozen values are exact decimal text, live ones floats: compare as numbers."""
    if frozen is None or now is None:
        return (frozen is None) != (now is None)
    return abs(float(frozen) - float(now)) > 1e-9 * max(1.0, abs(float(now)))

