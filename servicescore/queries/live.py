"""The live view: open tickets (backlog) per engineer and the age of the oldest one, and the
events held back waiting for their ticket-opened."""

from __future__ import annotations

from servicescore.storage.clickhouse import Storage

_BACKLOG = """
SELECT engineer_id, team_id, count() AS open_tickets,
    toUnixTimestamp64Milli(min(open_since)) AS oldest_open_since
FROM open_tickets GROUP BY engineer_id, team_id ORDER BY open_tickets DESC, engineer_id
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


def backlog(storage: Storage, now_ms: int) -> list[dict]:
    """Open tickets per current owner ('' when nobody holds them), oldest first seen age."""
    rows = storage.rows(_BACKLOG)
    for row in rows:
        row["oldest_open_age_s"] = max(0, now_ms - row["oldest_open_since"]) / 1000
    return rows
