-- The configuration KPI formulas need, kept in ClickHouse so that `servicescore kpis`, the
-- period close and a Grafana panel read one definition: the SLA targets per priority with the
-- SLA clock, and the review-360 weights. sync_targets (servicescore/queries/kpis.py) writes
-- them from the settings; the rows inserted here are the defaults of kpis.md, so a database
-- nobody has synced yet still has a target for every priority. They carry version 0, so any
-- sync replaces them (ReplacingMergeTree keeps the highest version; reads use FINAL).

CREATE TABLE IF NOT EXISTS sla_targets (
    kpi      LowCardinality(String),
    priority LowCardinality(String),
    target_s Float64,
    clock    LowCardinality(String),
    version  UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (kpi, priority);

INSERT INTO sla_targets (kpi, priority, target_s, clock, version) VALUES
    ('frt', 'P1', 900, 'calendar', 0), ('frt', 'P2', 3600, 'calendar', 0),
    ('frt', 'P3', 14400, 'calendar', 0), ('frt', 'P4', 86400, 'calendar', 0),
    ('aht', 'P1', 28800, 'calendar', 0), ('aht', 'P2', 86400, 'calendar', 0),
    ('aht', 'P3', 259200, 'calendar', 0), ('aht', 'P4', 604800, 'calendar', 0),
    ('onsite', 'P1', 14400, 'calendar', 0), ('onsite', 'P2', 28800, 'calendar', 0),
    ('onsite', 'P3', 86400, 'calendar', 0), ('onsite', 'P4', 259200, 'calendar', 0);

CREATE TABLE IF NOT EXISTS review_weights (
    assessor_role LowCardinality(String),
    weight        Float64,
    version       UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY assessor_role;

INSERT INTO review_weights (assessor_role, weight, version) VALUES
    ('supervisor', 0.4, 0), ('peer', 0.3, 0), ('customer', 0.2, 0), ('subordinate', 0.1, 0),
    ('self', 0, 0);

-- Each SLA target of a kind, by priority, with the duration column of the chosen clock.
CREATE OR REPLACE VIEW sla_target_of AS
SELECT kpi, priority, target_s, clock = 'business' AS business_clock
FROM sla_targets FINAL;

-- The sample views gain the SLA flag (kpis.md: sample <= the priority's target, on the clock
-- of SERVICESCORE_SLA_CLOCK): frt_sla_rate, aht_sla_rate and onsite_on_time_rate are
-- avg(within_target) over them, whoever asks.
CREATE OR REPLACE VIEW first_response_samples AS
SELECT t.first_responder_id AS engineer_id, ro.team_id AS team_id,
       assumeNotNull(t.first_response_at) AS at, t.ticket_id AS ticket_id,
       t.priority AS priority, assumeNotNull(t.frt_s) AS frt_s,
       assumeNotNull(t.frt_bh_s) AS frt_bh_s, g.target_s AS target_s,
       if(g.business_clock, frt_bh_s, frt_s) <= g.target_s AS within_target
FROM tickets AS t FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = t.first_responder_id
LEFT JOIN (SELECT * FROM sla_target_of WHERE kpi = 'frt') AS g ON g.priority = t.priority
WHERE t.first_response_at IS NOT NULL;

CREATE OR REPLACE VIEW onsite_samples AS
SELECT t.onsite_engineer_id AS engineer_id, ro.team_id AS team_id,
       assumeNotNull(t.onsite_at) AS at, t.ticket_id AS ticket_id, t.priority AS priority,
       assumeNotNull(t.onsite_s) AS onsite_s, assumeNotNull(t.onsite_bh_s) AS onsite_bh_s,
       g.target_s AS target_s,
       if(g.business_clock, onsite_bh_s, onsite_s) <= g.target_s AS within_target
FROM tickets AS t FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = t.onsite_engineer_id
LEFT JOIN (SELECT * FROM sla_target_of WHERE kpi = 'onsite') AS g ON g.priority = t.priority
WHERE t.onsite_at IS NOT NULL;

CREATE OR REPLACE VIEW resolution_samples AS
SELECT r.engineer_id AS engineer_id, ro.team_id AS team_id, r.resolved_at AS at,
       r.ticket_id AS ticket_id, r.episode AS episode, r.priority AS priority,
       r.aht_s AS aht_s, r.aht_bh_s AS aht_bh_s, r.fcr AS fcr,
       r.repeat_7d AS repeat_7d, r.repeat_30d AS repeat_30d, g.target_s AS target_s,
       if(g.business_clock, r.aht_bh_s, r.aht_s) <= g.target_s AS within_target
FROM resolution_facts AS r
LEFT JOIN team_of AS ro ON ro.engineer_id = r.engineer_id
LEFT JOIN (SELECT * FROM sla_target_of WHERE kpi = 'aht') AS g ON g.priority = r.priority;

-- The live view: an open ticket is due at its episode start plus the priority's resolution
-- target, on calendar time whatever SERVICESCORE_SLA_CLOCK says (working seconds need the
-- working calendar, which ClickHouse does not hold); overdue once the present is past due_at.
CREATE OR REPLACE VIEW open_tickets AS
SELECT ifNull(t.owner_id, '') AS engineer_id, ro.team_id AS team_id, t.ticket_id AS ticket_id,
       t.priority AS priority, t.episode_start AS open_since,
       addMilliseconds(t.episode_start, toInt64(g.target_s * 1000)) AS due_at
FROM tickets AS t FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = t.owner_id
LEFT JOIN (SELECT * FROM sla_target_of WHERE kpi = 'aht') AS g ON g.priority = t.priority
WHERE t.status = 'open'
