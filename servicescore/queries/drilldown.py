"""The drill-down: one row per resolution with every per-ticket fact behind the KPIs."""

from __future__ import annotations

from servicescore.storage.clickhouse import Storage

_SQL = """
SELECT r.ticket_id AS ticket_id, r.episode AS episode, t.customer_id AS customer_id,
    t.category AS category, t.priority AS priority, t.channel AS channel,
    toUnixTimestamp64Milli(t.opened_at) AS opened_at,
    toUnixTimestamp64Milli(t.first_response_at) AS first_response_at,
    t.first_responder_id AS first_responder_id, t.frt_s AS frt_s,
    t.escalations AS ticket_escalations, r.escalated AS escalated_in_episode,
    toUnixTimestamp64Milli(r.episode_start) AS episode_start,
    toUnixTimestamp64Milli(r.resolved_at) AS resolved_at, r.engineer_id AS resolved_by,
    ro.team_id AS team_id, r.aht_s AS handling_time_s, r.aht_bh_s AS handling_time_bh_s,
    r.fcr AS first_contact, r.reopened_7d AS reopened_7d, r.reopened_30d AS reopened_30d,
    r.new_ticket_7d AS new_ticket_7d, r.new_ticket_30d AS new_ticket_30d,
    r.repeat_7d AS repeat_7d, r.repeat_30d AS repeat_30d,
    s.csat AS survey_csat, s.nps AS survey_nps
FROM resolution_facts_between(from_ms = {from_ms:Int64}, to_ms = {to_ms:Int64}) AS r
LEFT JOIN (SELECT * FROM tickets FINAL) AS t ON t.ticket_id = r.ticket_id
LEFT JOIN team_of AS ro ON ro.engineer_id = r.engineer_id
LEFT JOIN (SELECT ticket_id, engineer_id, groupArray(csat) AS csat,
                  groupArray(ifNull(nps, -1)) AS nps
           FROM surveys FINAL GROUP BY ticket_id, engineer_id) AS s
    ON s.ticket_id = r.ticket_id AND s.engineer_id = r.engineer_id
WHERE {where}
ORDER BY resolved_at, ticket_id, episode
"""


def resolutions(storage: Storage, from_ms: int, to_ms: int, engineer: str | None = None,
                team: str | None = None) -> list[dict]:
    """Rows of the drill-down; ``survey_csat``/``survey_nps`` list the surveys of the ticket
    credited to the resolving engineer (nps -1 when the survey had none)."""
    where = ["1"]
    if engineer:
        where.append("r.engineer_id = {engineer:String}")
    if team:
        where.append("ro.team_id = {team:String}")
    params = {"from_ms": from_ms, "to_ms": to_ms, "engineer": engineer or "", "team": team or ""}
    return storage.rows(_SQL.replace("{where}", " AND ".join(where)), params)
