"""Consistency of the facts on their own, without an oracle: a lost facts message shows up here
in every test and in production alike (``servicescore check``, and a gauge on /metrics).

A ticket's row says how many resolutions (closed episodes), escalations and surveys it has; the
fact tables must hold exactly that many rows of the ticket. The stream processor sends the row
and its facts from the same state, so a message lost in a crash leaves a row that disagrees as
soon as the ticket changes again.
"""

from __future__ import annotations

from servicescore.storage.clickhouse import Storage

_SQL = """
SELECT t.ticket_id AS ticket_id,
       toUInt64(t.episodes - (t.status = 'open')) AS claimed_resolutions,
       ifNull(r.n, 0) AS resolution_facts,
       toUInt64(t.escalations) AS claimed_escalations, ifNull(e.n, 0) AS escalation_facts,
       toUInt64(t.surveys) AS claimed_surveys, ifNull(s.n, 0) AS survey_facts
FROM (SELECT ticket_id, episodes, status, escalations, surveys FROM tickets FINAL) AS t
LEFT JOIN (SELECT ticket_id, count() AS n FROM resolutions FINAL GROUP BY ticket_id) AS r
    ON r.ticket_id = t.ticket_id
LEFT JOIN (SELECT ticket_id, count() AS n FROM escalations FINAL GROUP BY ticket_id) AS e
    ON e.ticket_id = t.ticket_id
LEFT JOIN (SELECT ticket_id, count() AS n FROM surveys FINAL GROUP BY ticket_id) AS s
    ON s.ticket_id = t.ticket_id
WHERE claimed_resolutions != resolution_facts OR claimed_escalations != escalation_facts
   OR claimed_surveys != survey_facts
ORDER BY ticket_id
SETTINGS join_use_nulls = 1
"""


def inconsistent_tickets(storage: Storage, examples: int = 20) -> dict:
    """How many tickets disagree with their facts, and the first few of them."""
    rows = storage.rows(_SQL)
    return {"inconsistent_tickets": len(rows), "examples": rows[:examples]}
