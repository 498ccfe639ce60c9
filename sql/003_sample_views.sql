-- One row per KPI sample, with the engineer it is credited to, the sample's time and the
-- engineer's team from the roster. The KPI queries (servicescore/kpis.py) aggregate these for
-- any [from, to) window; Grafana reads the same views ($__timeFilter on the time column).
-- FINAL inside each view: corrected and redelivered facts count once.

CREATE VIEW IF NOT EXISTS team_of AS
SELECT engineer_id, team_id FROM roster FINAL;

CREATE VIEW IF NOT EXISTS resolution_samples AS
SELECT r.engineer_id AS engineer_id, ro.team_id AS team_id, r.resolved_at AS at,
       r.ticket_id AS ticket_id, r.episode AS episode, r.priority AS priority,
       r.aht_s AS aht_s, r.aht_bh_s AS aht_bh_s, r.fcr AS fcr,
       (r.reopened_7d OR p.new_ticket_7d) AS repeat_7d,
       (r.reopened_30d OR p.new_ticket_30d) AS repeat_30d
FROM resolutions AS r FINAL
LEFT JOIN (SELECT ticket_id, episode, new_ticket_7d, new_ticket_30d FROM repeats FINAL) AS p
    ON p.ticket_id = r.ticket_id AND p.episode = r.episode
LEFT JOIN team_of AS ro ON ro.engineer_id = r.engineer_id;

CREATE VIEW IF NOT EXISTS first_response_samples AS
SELECT t.first_responder_id AS engineer_id, ro.team_id AS team_id,
       assumeNotNull(t.first_response_at) AS at, t.ticket_id AS ticket_id,
       t.priority AS priority, assumeNotNull(t.frt_s) AS frt_s,
       assumeNotNull(t.frt_bh_s) AS frt_bh_s
FROM tickets AS t FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = t.first_responder_id
WHERE t.first_response_at IS NOT NULL;

CREATE VIEW IF NOT EXISTS onsite_samples AS
SELECT t.onsite_engineer_id AS engineer_id, ro.team_id AS team_id,
       assumeNotNull(t.onsite_at) AS at, t.ticket_id AS ticket_id, t.priority AS priority,
       assumeNotNull(t.onsite_s) AS onsite_s, assumeNotNull(t.onsite_bh_s) AS onsite_bh_s
FROM tickets AS t FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = t.onsite_engineer_id
WHERE t.onsite_at IS NOT NULL;

CREATE VIEW IF NOT EXISTS escalation_samples AS
SELECT e.engineer_id AS engineer_id, ro.team_id AS team_id, e.escalated_at AS at,
       e.ticket_id AS ticket_id
FROM escalations AS e FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = e.engineer_id;

-- Surveys credited to nobody count only in department totals.
CREATE VIEW IF NOT EXISTS survey_samples AS
SELECT assumeNotNull(s.engineer_id) AS engineer_id, ro.team_id AS team_id,
       s.submitted_at AS at, s.ticket_id AS ticket_id, s.csat AS csat, s.nps AS nps
FROM surveys AS s FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = s.engineer_id
WHERE s.engineer_id IS NOT NULL;

CREATE VIEW IF NOT EXISTS complaint_samples AS
SELECT c.engineer_id AS engineer_id, ro.team_id AS team_id, c.filed_at AS at,
       c.severity AS severity
FROM complaints AS c FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = c.engineer_id;

CREATE VIEW IF NOT EXISTS assessment_samples AS
SELECT a.engineer_id AS engineer_id, ro.team_id AS team_id, a.effective_at AS at,
       a.dimension AS dimension, a.assessor_role AS assessor_role, a.score AS score
FROM assessments AS a FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = a.engineer_id;

-- The live view: open tickets by who holds them now.
CREATE VIEW IF NOT EXISTS open_tickets AS
SELECT ifNull(t.owner_id, '') AS engineer_id, ro.team_id AS team_id, t.ticket_id AS ticket_id,
       t.priority AS priority, t.episode_start AS open_since
FROM tickets AS t FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = t.owner_id
WHERE t.status = 'open';
