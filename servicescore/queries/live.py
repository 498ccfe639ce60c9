"""The live view: open tickets (backlog) per engineer or team, the age of the oldest one and
how many are overdue, and the events held back waiting for their ticket-opened.

Overdue (kpis.md 1.1, "Live view"): an open ticket whose current episode started longer ago than
its priority's resolution target (the aht targets of ``sync_targets``), i.e. the present is past
its ``due_at`` in the view ``open_tickets`` (sql/005). Counted on calendar time whatever
SERVICESCORE_SLA_CLOCK says: working seconds up to the present need the working calendar, which
ClickHouse does not hold, and a Grafana panel must be able to count the same from the view.
"""

from __future__ import annotations

from servicescore.storage.clickhouse import Storage

_GROUPS = {"engineer": "engineer_id, team_id", "team": "team_id"}
_BACKLOG = """
SELECT {group}, count() AS open_tickets,
    toUnixTimestamp64Milli(min(open_since)) AS oldest_open_since,
    countIf(due_at < fromUnixTimestamp64Milli({{now_ms:Int64}}, 'UTC')) AS overdue_tickets
FROM open_tickets GROUP BY {group} ORDER BY open_tickets DESC, {group}
"""


_HELD = """
SELECT ticket_id, event_id, event_kind, toUnixTimestamp64Milli(occurred_at) AS occurred_at,
    toUnixTimestamp64Milli(held_since) AS held_since
FROM held_events FINAL ORDER BY held_since, ticket_id, event_id LIMIT {limit:UInt32}
"""
_HELD_SUMMARY = """
SELECT count() AS held_events, toUnixTimestamp64Milli(min(held_since)) AS oldest_held_since
FROM held_events FINAL
"""


def held(storage: Storage, now_ms: int, limit: int = 100) -> list[dict]:
    """Events waiting for their ticket-opened (kpis.md: held, not dropped), with their age."""
    rows = storage.rows(_HELD, {"limit": limit})
    for row in rows:
        row["age_s"] = max(0, now_ms - row["held_since"]) / 1000
    return rows


def held_summary(storage: Storage, now_ms: int) -> dict:
    row = storage.rows(_HELD_SUMMARY)[0]
    oldest = row.pop("oldest_held_since") if row["held_events"] else None
    row["oldest_held_age_s"] = None if oldest is None else max(0, now_ms - oldest) / 1000
    return row


def backlog(storage: Storage, now_ms: int, group: str = "engineer") -> list[dict]:
    """Open tickets per current owner ('' when nobody holds them) with the owner's team, or per
    team (``group="team"``): how many, how many overdue at ``now_ms``, the oldest one's age."""
    rows = storage.rows(_BACKLOG.format(group=_GROUPS[group]), {"now_ms": now_ms})
    for row in rows:
        row["oldest_open_age_s"] = max(0, now_ms - row["oldest_open_since"]) / 1000
    return rows
