"""The live view: open tickets (backlog) per engineer and the age of the oldest one."""

from __future__ import annotations

from servicescore.storage import Storage

_BACKLOG = """
SELECT owner AS engineer_id, ro.team_id AS team_id, count() AS open_tickets,
    toUnixTimestamp64Milli(min(t.episode_start)) AS oldest_open_since
FROM (SELECT ifNull(owner_id, '') AS owner, episode_start FROM tickets FINAL
      WHERE status = 'open') AS t
LEFT JOIN (SELECT engineer_id, team_id FROM roster FINAL) AS ro ON ro.engineer_id = t.owner
GROUP BY owner, team_id ORDER BY open_tickets DESC, owner
"""


def backlog(storage: Storage, now_ms: int) -> list[dict]:
    """Open tickets per current owner ('' when nobody holds them), oldest first seen age."""
    rows = storage.rows(_BACKLOG)
    for row in rows:
        row["oldest_open_age_s"] = max(0, now_ms - row["oldest_open_since"]) / 1000
    return rows
