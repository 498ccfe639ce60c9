"""The period close: every engineer's scorecard for a period, frozen all or nothing.

ClickHouse has no multi-table transaction, so a close becomes visible by one row written last
(sql/006_appraisals.sql):

1. ``close_samples``: the KPI samples of the period, copied from the sample views in one
   statement under a new close id, SLA flags and review weights included;
2. ``appraisals``: the scorecards, computed from that copy only (appraisal/scorecard.py);
3. ``closes``: the commit marker, with the scheme and the content hash of the copy.

Readers see only closes with a marker. A crash or a storage error before it leaves rows nobody
reads; the next attempt starts over under another id. Events that arrive later change the live
KPIs, never the copy: ``adjustments`` shows the difference.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from appraisal.scheme import Scheme
from appraisal.scorecard import Scorecard, scorecard
from schemas.errors import ServicescoreError
from schemas.period import Period, parse_period
from servicescore.core.faults import Faults
from servicescore.queries import kpis
from servicescore.storage.clickhouse import Storage

# The columns each family's sample view gives besides engineer_id, team_id and at (sql/003,
# sql/005); the copy keeps them all, so the close computes its KPIs as `kpis` does.
FAMILY_COLUMNS: dict[str, tuple[str, ...]] = {
    "resolutions": ("ticket_id", "episode", "priority", "aht_s", "aht_bh_s", "fcr", "repeat_7d",
                    "repeat_30d", "target_s", "within_target"),
    "first_responses": ("ticket_id", "priority", "frt_s", "frt_bh_s", "target_s",
                        "within_target"),
    "onsite": ("ticket_id", "priority", "onsite_s", "onsite_bh_s", "target_s", "within_target"),
    "escalations": ("ticket_id",),
    "surveys": ("ticket_id", "csat", "nps"),
    "complaints": ("severity",),
    "assessments": ("dimension", "assessor_role", "score", "weight"),
}
COLUMNS = ("engineer_id", "team_id", "at", *dict.fromkeys(
    c for columns in FAMILY_COLUMNS.values() for c in columns))


class CloseRefused(ServicescoreError):
    """The close may not run now (too early, already closed): the reason in one line."""


@dataclass(frozen=True)
class Closed:
    period: str
    close_id: str
    engineers: int
    content_hash: str
    closed_at_ms: int
    supersedes: str | None = None


def close_period(storage: Storage, period_name: str, scheme: Scheme, now_ms: int,
                 early: bool = False, supersede: str | None = None,
                 faults: Faults | None = None) -> Closed:
    """Close ``period_name`` under ``scheme`` (its timezone and grace). ``supersede`` (the
    reason) replaces the period's current close; without it a closed period is refused."""
    period = parse_period(period_name, scheme.timezone)
    current = current_close(storage, period.name)
    _check_allowed(period, scheme, now_ms, early, current, supersede)
    faults = faults or Faults()
    close_id = uuid.uuid4().hex
    copy_samples(storage, close_id, period)
    faults.reach("close:samples")
    content = content_hash(storage, close_id, scheme)
    cards = scorecards(storage, close_id, period, scheme)
    write_appraisals(storage, close_id, period.name, cards, scheme.version, now_ms, content)
    faults.reach("close:appraisals")
    storage.insert("closes", [[close_id, period.name, period.kind, now_ms, scheme.version,
                               scheme.model_dump_json(), content, len(cards),
                               current["close_id"] if current else None, supersede]],
                   ["close_id", "period", "kind", "closed_at", "scheme_version", "scheme",
                    "content_hash", "engineers", "supersedes", "reason"])
    return Closed(period.name, close_id, len(cards), content, now_ms,
                  current["close_id"] if current else None)


def close_due(storage: Storage, scheme: Scheme, now_ms: int) -> Closed | None:
    """What ``run`` does by itself: close the previous month once its grace has passed, if it
    has any KPI sample and is not closed yet. None when there is nothing to do."""
    now = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(scheme.timezone))
    month = parse_period(f"{now:%Y-%m}", scheme.timezone).previous()
    period = parse_period(month, scheme.timezone)
    due = now >= period.end + timedelta(days=scheme.grace_days)
    if not due or current_close(storage, month) is not None:
        return None
    if not kpis.compute(storage, period.start_ms, period.end_ms):
        return None  # nothing happened that month (before servicescore was in use)
    return close_period(storage, month, scheme, now_ms)


def _check_allowed(period: Period, scheme: Scheme, now_ms: int, early: bool,
                   current: dict | None, supersede: str | None) -> None:
    if current is not None and supersede is None:
        raise CloseRefused(f"{period.name} is already closed (close {current['close_id'][:12]}, "
                           "nothing changed); --supersede REASON closes it again")
    if supersede is not None and not supersede.strip():
        raise CloseRefused("--supersede needs a reason")
    if current is None and supersede is not None:
        raise CloseRefused(f"{period.name} has no close to supersede")
    opens_at = period.end + timedelta(days=scheme.grace_days)
    if not early and now_ms < int(opens_at.timestamp() * 1000):
        raise CloseRefused(f"{period.name} may be closed from {opens_at.isoformat()} (its end "
                           f"plus {scheme.grace_days} days of grace); --early closes it now")


def copy_samples(storage: Storage, close_id: str, period: Period) -> None:
    """One INSERT ... SELECT of every family's samples in the period: all of them or none."""
    parts = []
    for family, columns in FAMILY_COLUMNS.items():
        shown = ", ".join(c if c in columns or c in ("engineer_id", "team_id", "at")
                          else f"NULL AS {c}" for c in COLUMNS)
        parts.append(f"SELECT '{close_id}' AS close_id, '{family}' AS family, {shown} "
                     f"FROM {kpis.sample_source(family)} WHERE {kpis.WINDOW}")
    storage.command(f"INSERT INTO close_samples (close_id, family, {', '.join(COLUMNS)}) "
                    + " UNION ALL ".join(parts),
                    {"from_ms": period.start_ms, "to_ms": period.end_ms})


def frozen_source(close_id: str):
    """The close's copy in place of a sample view, for ``kpis.compute``."""
    return lambda family: (f"(SELECT * FROM close_samples WHERE close_id = '{close_id}' "
                           f"AND family = '{family}')")


def content_hash(storage: Storage, close_id: str, scheme: Scheme) -> str:
    """SHA-256 of the copied samples (in a fixed order) and the scheme: what the close read."""
    digest = hashlib.sha256(scheme.model_dump_json().encode())
    rows = storage.rows(
        f"SELECT family, {', '.join(COLUMNS)} FROM close_samples "
        "WHERE close_id = {close_id:String} ORDER BY family, " + ", ".join(COLUMNS),
        {"close_id": close_id})
    for row in rows:
        digest.update(orjson.dumps(row, default=str, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def scorecards(storage: Storage, close_id: str, period: Period,
               scheme: Scheme) -> list[Scorecard]:
    """The scorecards of the close, from its copy only."""
    rows = {r["engineer_id"]: r for r in kpis.compute(
        storage, period.start_ms, period.end_ms, source=frozen_source(close_id))}
    return scorecards_of(storage, rows, period, scheme)


def scorecards_of(storage: Storage, rows: dict[str, dict], period: Period,
                  scheme: Scheme) -> list[Scorecard]:
    """Every engineer active in the roster or with a KPI row, scored under ``scheme`` with the
    roster's role now (``default_role`` when the roster has none the scheme scores)."""
    roster = roles(storage)
    engineers = sorted(set(rows) | {e for e, r in roster.items() if r["active"]})
    previous = previous_grades(storage, period)
    cards = []
    for engineer in engineers:
        row = rows.get(engineer) or {"engineer_id": engineer, **kpis.empty_kpis()}
        role = roster.get(engineer, {}).get("role")
        role = role if role in scheme.roles else scheme.default_role
        cards.append(scorecard(row, scheme, role, previous.get(engineer)))
    return cards


def roles(storage: Storage) -> dict[str, dict]:
    """engineer_id -> the roster's role and whether active, now."""
    return {r["engineer_id"]: r for r in storage.rows(
        "SELECT engineer_id, role, active FROM roster FINAL")}


def write_appraisals(storage: Storage, close_id: str, period: str, cards: list[Scorecard],
                     scheme_version: str, now_ms: int, content: str) -> None:
    rows = []
    for card in cards:
        shown = card.to_json()
        rows.append([close_id, period, card.engineer_id, card.role, shown["score"],
                     card.grade, card.grade_label, shown["bonus"], list(card.flags),
                     orjson.dumps(shown["kpis"]).decode(), scheme_version, now_ms, content])
    if rows:
        storage.insert("appraisals", rows, [
            "close_id", "period", "engineer_id", "role", "score", "grade", "grade_label",
            "bonus", "flags", "kpis", "scheme_version", "closed_at", "content_hash"])


def current_close(storage: Storage, period: str) -> dict | None:
    """The period's committed close that no later one superseded, or None."""
    rows = storage.rows("SELECT close_id, scheme, toUnixTimestamp64Milli(closed_at) AS closed_at "
                        "FROM close_status WHERE period = {period:String} AND status = 'frozen' "
                        "ORDER BY closed_at DESC LIMIT 1", {"period": period})
    return rows[0] if rows else None


def previous_grades(storage: Storage, period: Period) -> dict[str, str]:
    """Each engineer's grade in the current close of the previous period of the same kind."""
    before = current_close(storage, period.previous())
    if before is None:
        return {}
    return {r["engineer_id"]: r["grade"] for r in storage.rows(
        "SELECT engineer_id, grade FROM appraisals WHERE close_id = {close_id:String}",
        {"close_id": before["close_id"]})}
