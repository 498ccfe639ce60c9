"""Reading closed periods for the printed report (appraisal.md "Outputs"): the scores of the last
closed periods of a kind, and everything a report of one close shows. Nothing here writes.

    recent_scores(storage, "2026-11", 6)
    # {"periods": ["2026-06", ..., "2026-11"], "scores": {"E001": ["88.10", None, ...], ...}}
"""

from __future__ import annotations

import orjson

from appraisal.close import current_close
from appraisal.results import appraisals
from schemas.period import format_instant, parse_period
from servicescore.storage.clickhouse import Storage

TREND_PERIODS = 6  # half a year of months on a sheet's trend chart

# The current close of each period of a kind up to a period, newest first. Period names of one
# kind sort as text in time order (2026-09 < 2026-11, 2026-Q3 < 2026-Q4).
_CLOSES = """
SELECT period, close_id FROM close_status
WHERE kind = {kind:String} AND status = 'frozen' AND period <= {period:String}
ORDER BY period DESC, closed_at DESC
LIMIT 1 BY period
LIMIT {count:UInt32}
"""


def recent_scores(storage: Storage, period: str, count: int = TREND_PERIODS,
                  engineer: str | None = None) -> dict:
    """The last ``count`` closed periods of ``period``'s kind up to and including it (oldest
    first; periods never closed are skipped) and each engineer's frozen score in them, None
    where the engineer was not appraised or had no score."""
    kind = parse_period(period, "UTC").kind  # the kind does not depend on the timezone
    closes = storage.rows(_CLOSES, {"kind": kind, "period": period, "count": count})[::-1]
    periods = [c["period"] for c in closes]
    found = storage.rows(
        "SELECT period, engineer_id, score FROM appraisals WHERE has({ids:Array(String)}, "
        "close_id)" + (" AND engineer_id = {engineer:String}" if engineer is not None else ""),
        {"ids": [c["close_id"] for c in closes], "engineer": engineer or ""})
    scores: dict[str, list[str | None]] = {}
    for row in found:
        line = scores.setdefault(row["engineer_id"], [None] * len(periods))
        line[periods.index(row["period"])] = row["score"]
    return {"periods": periods, "scores": dict(sorted(scores.items()))}


def report_data(storage: Storage, period: str, engineer: str | None = None,
                count: int = TREND_PERIODS) -> dict:
    """What the report of ``period``'s current close shows, in JSON types (it also travels
    through the API): the close's own scheme (grades, currency, minimum samples), its frozen
    appraisals (of one engineer when given) and their trend. ``appraisals`` is empty when the
    period is not closed."""
    close = current_close(storage, period)
    if close is None:
        return {"period": period, "engineer": engineer, "closed_at": None, "scheme": None,
                "appraisals": [], "names": {}, "trend": {"periods": [], "scores": {}}}
    scheme = orjson.loads(close["scheme"])
    rows = appraisals(storage, period, scheme["timezone"])
    if engineer is not None:
        rows = [r for r in rows if r["engineer_id"] == engineer]
    return {"period": period, "engineer": engineer,
            "closed_at": format_instant(close["closed_at"], scheme["timezone"]),
            "scheme": scheme, "appraisals": rows, "names": names(storage, rows),
            "trend": recent_scores(storage, period, count, engineer)}


def names(storage: Storage, rows: list[dict]) -> dict[str, str]:
    """The roster's name of each appraised engineer who has one (a sheet is signed by name)."""
    found = storage.rows("SELECT engineer_id, name FROM roster FINAL "
                         "WHERE has({ids:Array(String)}, engineer_id) AND name != ''",
                         {"ids": [r["engineer_id"] for r in rows]})
    return {r["engineer_id"]: r["name"] for r in found}
