"""The live view: open tickets (backlog) per engineer and the age of the oldest one."""

from __future__ import annotations

from servicescore.storage import Storage

_BACKLOG = """
SELECT engineer_id, team_id, count() AS open_tickets,
    toUnixTimestamp64Milli(min(open_since)) AS oldest_open_since
FROM open_tickets GROUP BY engineer_id, team_id ORDER BY open_tickets DESC, engineer_id
"""


def backlog(storage: Storage, now_ms: int) -> list[dict]:
    """Open tickets per current owner ('' when nobody holds them), oldest first seen age."""
    rows = storage.rows(_BACKLOG)
    for row in rows:
        row["oldest_open_age_s"] = max(0, now_ms - row["oldest_open_since"]) / 1000
    return rows
