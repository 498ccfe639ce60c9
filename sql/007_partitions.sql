-- Facts partitioned by the month of their event time, so that a window's KPIs read only that
-- window's parts (docs/decisions.md, "Partitions by event time").
--
-- Why corrections stay exact: ReplacingMergeTree replaces a row only by one with the same
-- sorting key in the same partition. Each table below holds its time column in its identity
-- (the ORDER BY, schemas/facts.py FactTable.key) and is partitioned by a function of that
-- column, so one identity always lies in one partition. A fact whose time is corrected (an
-- earlier resolved or opened arriving late) becomes a new identity, written in its new
-- partition; the worker sends a tombstone for the old identity, with the old time
-- (streams/facts.py changes, streams/lifecycle.py), which lands in the old partition and
-- removes the old row there. FINAL may therefore merge each partition on its own
-- (do_not_merge_across_partitions_select_final = 1), and a filter on the time column prunes
-- partitions and, the time leading the ORDER BY, granules within them.
--
-- The time leads the ORDER BY: a window is one key range. The rest of the identity follows,
-- so the key stays the fact's identity exactly.
--
-- Each table is rebuilt: a new table, the current rows copied (FINAL: the newest version of
-- each fact, tombstoned ones left out; older versions would otherwise become identities of
-- their own), then swapped in under the old name; the views keep reading the same names.
-- Stop the lifecycle workers and let the sink drain the facts topic before migrating: a
-- tombstone written before this version carries no time and is refused by the sink.
-- Not partitioned: complaints and assessments (small, never corrected: their time is their
-- event's), the roster, the SLA targets and the review weights (reference data), dead letters
-- and held events (read whole, few), the close tables (read by close id).

CREATE TABLE IF NOT EXISTS tickets_by_month (
    ticket_id          String,
    customer_id        String,
    category           String,
    priority           LowCardinality(String),
    channel            LowCardinality(String),
    team_id            Nullable(String),
    assignee_id        Nullable(String),
    requires_onsite    Bool,
    opened_at          DateTime64(3, 'UTC'),
    status             LowCardinality(String),
    episodes           UInt16,
    episode_start      DateTime64(3, 'UTC'),
    owner_id           Nullable(String),
    escalations        UInt16,
    surveys            UInt16 DEFAULT 0,
    first_response_at  Nullable(DateTime64(3, 'UTC')),
    first_responder_id Nullable(String),
    frt_s              Nullable(Float64),
    frt_bh_s           Nullable(Float64),
    onsite_at          Nullable(DateTime64(3, 'UTC')),
    onsite_engineer_id Nullable(String),
    onsite_s           Nullable(Float64),
    onsite_bh_s        Nullable(Float64),
    version            UInt64,
    deleted            UInt8,
    INDEX first_response_at_minmax first_response_at TYPE minmax GRANULARITY 1,
    INDEX onsite_at_minmax onsite_at TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree(version, deleted)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (opened_at, ticket_id)
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO tickets_by_month (ticket_id, customer_id, category, priority, channel, team_id,
    assignee_id, requires_onsite, opened_at, status, episodes, episode_start, owner_id,
    escalations, surveys, first_response_at, first_responder_id, frt_s, frt_bh_s, onsite_at,
    onsite_engineer_id, onsite_s, onsite_bh_s, version, deleted)
SELECT ticket_id, customer_id, category, priority, channel, team_id, assignee_id,
    requires_onsite, opened_at, status, episodes, episode_start, owner_id, escalations, surveys,
    first_response_at, first_responder_id, frt_s, frt_bh_s, onsite_at, onsite_engineer_id,
    onsite_s, onsite_bh_s, version, deleted
FROM tickets FINAL;

EXCHANGE TABLES tickets AND tickets_by_month;

DROP TABLE IF EXISTS tickets_by_month;

CREATE TABLE IF NOT EXISTS resolutions_by_month (
    ticket_id     String,
    episode       UInt16,
    engineer_id   String,
    resolved_at   DateTime64(3, 'UTC'),
    episode_start DateTime64(3, 'UTC'),
    aht_s         Float64,
    aht_bh_s      Float64,
    escalated     Bool,
    fcr           Bool,
    reopened_7d   Bool,
    reopened_30d  Bool,
    customer_id   String,
    category      String,
    priority      LowCardinality(String),
    version       UInt64,
    deleted       UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
PARTITION BY toYYYYMM(resolved_at)
ORDER BY (resolved_at, ticket_id, episode)
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO resolutions_by_month (ticket_id, episode, engineer_id, resolved_at, episode_start,
    aht_s, aht_bh_s, escalated, fcr, reopened_7d, reopened_30d, customer_id, category,
    priority, version, deleted)
SELECT ticket_id, episode, engineer_id, resolved_at, episode_start, aht_s, aht_bh_s,
    escalated, fcr, reopened_7d, reopened_30d, customer_id, category, priority, version,
    deleted
FROM resolutions FINAL;

EXCHANGE TABLES resolutions AND resolutions_by_month;

DROP TABLE IF EXISTS resolutions_by_month;

CREATE TABLE IF NOT EXISTS surveys_by_month (
    event_id     String,
    ticket_id    String,
    submitted_at DateTime64(3, 'UTC'),
    engineer_id  Nullable(String),
    credited_by  LowCardinality(String),
    csat         UInt8,
    nps          Nullable(UInt8),
    version      UInt64,
    deleted      UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
PARTITION BY toYYYYMM(submitted_at)
ORDER BY (submitted_at, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO surveys_by_month (event_id, ticket_id, submitted_at, engineer_id, credited_by, csat,
    nps, version, deleted)
SELECT event_id, ticket_id, submitted_at, engineer_id, credited_by, csat, nps, version, deleted
FROM surveys FINAL;

EXCHANGE TABLES surveys AND surveys_by_month;

DROP TABLE IF EXISTS surveys_by_month;

CREATE TABLE IF NOT EXISTS escalations_by_month (
    event_id       String,
    ticket_id      String,
    engineer_id    String,
    to_engineer_id Nullable(String),
    escalated_at   DateTime64(3, 'UTC'),
    episode        UInt16,
    version        UInt64,
    deleted        UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
PARTITION BY toYYYYMM(escalated_at)
ORDER BY (escalated_at, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO escalations_by_month (event_id, ticket_id, engineer_id, to_engineer_id,
    escalated_at, episode, version, deleted)
SELECT event_id, ticket_id, engineer_id, to_engineer_id, escalated_at, episode, version, deleted
FROM escalations FINAL;

EXCHANGE TABLES escalations AND escalations_by_month;

DROP TABLE IF EXISTS escalations_by_month;

-- The resolutions of a window [from_ms, to_ms) with their repeat flags: the one definition of
-- "repeat = reopen of the ticket or a new ticket of the same customer and category" (kpis.md),
-- replacing that of sql/004 (resolution_facts is now this over all time: the whole range of
-- DateTime64(3)).
-- A new ticket follows resolution R within N days iff the first ticket of the customer and
-- category other than R's own opened at or after R was opened by R + N days. The tickets are
-- grouped by their opening instant (n tickets, one of their ids, and the next instant of the
-- key): one ASOF join finds the first instant at or after R; the first other ticket is there
-- unless that instant holds R's own ticket alone, and then it is at the next instant. Exact,
-- O(n log n), and one join where sql/004 had four. The customer and category are joined as
-- one string, the customer's byte length first (`same`): one key hashes faster than two, and
-- the length prefix keeps the pair apart from any other pair.
-- Only the tickets opened in [from, to + 30 days] are read: for R in [from, to) the answer
-- lies in [R, R + 30 days], within that range (a next instant past it is past R + 30 days
-- too). Both reads are partition-pruned; FINAL merges each partition on its own.
CREATE VIEW IF NOT EXISTS resolution_facts_between AS
WITH fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') AS lo,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS hi,
     fromUnixTimestamp64Milli(least({to_ms:Int64} + 2592000000, 10413791999999), 'UTC') AS horizon
SELECT * EXCEPT (next_other) FROM (
SELECT r.ticket_id AS ticket_id, r.episode AS episode, r.engineer_id AS engineer_id,
       r.resolved_at AS resolved_at, r.episode_start AS episode_start, r.aht_s AS aht_s,
       r.aht_bh_s AS aht_bh_s, r.escalated AS escalated, r.fcr AS fcr,
       r.reopened_7d AS reopened_7d, r.reopened_30d AS reopened_30d,
       r.customer_id AS customer_id, r.category AS category, r.priority AS priority,
       if(o.tickets = 0, NULL, if(o.tickets > 1 OR o.ticket_id != r.ticket_id,
                                  toNullable(o.opened_at), o.next_opened_at)) AS next_other,
       ifNull(next_other <= r.resolved_at + INTERVAL 7 DAY, false) AS new_ticket_7d,
       ifNull(next_other <= r.resolved_at + INTERVAL 30 DAY, false) AS new_ticket_30d,
       (r.reopened_7d OR new_ticket_7d) AS repeat_7d,
       (r.reopened_30d OR new_ticket_30d) AS repeat_30d
FROM (SELECT *, concat(toString(length(customer_id)), ':', customer_id, category) AS same
      FROM resolutions FINAL WHERE resolved_at >= lo AND resolved_at < hi) AS r
ASOF LEFT JOIN (
    SELECT same, opened_at, tickets, ticket_id,
           leadInFrame(toNullable(opened_at)) OVER (
               PARTITION BY same ORDER BY opened_at
               ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_opened_at
    FROM (SELECT concat(toString(length(customer_id)), ':', customer_id, category) AS same,
                 opened_at, count() AS tickets, any(ticket_id) AS ticket_id
          FROM tickets FINAL WHERE opened_at >= lo AND opened_at <= horizon
          GROUP BY same, opened_at)) AS o
    ON o.same = r.same AND o.opened_at >= r.resolved_at)
SETTINGS join_use_nulls = 0, do_not_merge_across_partitions_select_final = 1;

CREATE OR REPLACE VIEW resolution_facts AS
SELECT * FROM resolution_facts_between(from_ms = -2208988800000, to_ms = 10413792000000);

-- The resolution samples of a window: what resolution_samples (sql/005) gives, read through
-- the window's resolution facts. resolution_samples is this over all time.
CREATE VIEW IF NOT EXISTS resolution_samples_between AS
SELECT r.engineer_id AS engineer_id, ro.team_id AS team_id, r.resolved_at AS at,
       r.ticket_id AS ticket_id, r.episode AS episode, r.priority AS priority,
       r.aht_s AS aht_s, r.aht_bh_s AS aht_bh_s, r.fcr AS fcr,
       r.repeat_7d AS repeat_7d, r.repeat_30d AS repeat_30d, g.target_s AS target_s,
       if(g.business_clock, r.aht_bh_s, r.aht_s) <= g.target_s AS within_target
FROM resolution_facts_between(from_ms = {from_ms:Int64}, to_ms = {to_ms:Int64}) AS r
LEFT JOIN team_of AS ro ON ro.engineer_id = r.engineer_id
LEFT JOIN (SELECT * FROM sla_target_of WHERE kpi = 'aht') AS g ON g.priority = r.priority;

CREATE OR REPLACE VIEW resolution_samples AS
SELECT * FROM resolution_samples_between(from_ms = -2208988800000, to_ms = 10413792000000);

-- The other sample views read one partitioned table each: the window's filter on `at` reaches
-- the table's time column, so they are pruned as they stand; each partition is merged on its
-- own.
CREATE OR REPLACE VIEW escalation_samples AS
SELECT e.engineer_id AS engineer_id, ro.team_id AS team_id, e.escalated_at AS at,
       e.ticket_id AS ticket_id
FROM escalations AS e FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = e.engineer_id
SETTINGS do_not_merge_across_partitions_select_final = 1;

CREATE OR REPLACE VIEW survey_samples AS
SELECT assumeNotNull(s.engineer_id) AS engineer_id, ro.team_id AS team_id,
       s.submitted_at AS at, s.ticket_id AS ticket_id, s.csat AS csat, s.nps AS nps
FROM surveys AS s FINAL
LEFT JOIN team_of AS ro ON ro.engineer_id = s.engineer_id
WHERE s.engineer_id IS NOT NULL
SETTINGS do_not_merge_across_partitions_select_final = 1
