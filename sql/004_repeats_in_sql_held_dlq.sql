-- 1. "A new ticket of the same customer and category within N days after a resolution" is a
-- relation between tickets, so ClickHouse answers it from the facts instead of a stream
-- processor keeping a per-customer index (which could lose a flag in a crash and had no bound).
-- Exact, and O(n log n): with n(x) = tickets of the key opened at or before x, another ticket
-- was opened in [R, R + N days] iff n(R + N) - n(R-) - (the ticket itself in that range) > 0;
-- each n() is one ASOF lookup into a running count per key.
CREATE VIEW IF NOT EXISTS opened_counts AS
SELECT customer_id, category, opened_at,
       count() OVER (PARTITION BY customer_id, category ORDER BY opened_at) AS n
FROM tickets FINAL;

-- Every resolution with its repeat flags: the one definition of "repeat = reopen of the ticket
-- or a new ticket of the same customer and category" (kpis.md), read by the KPI samples and by
-- the drill-down.
CREATE VIEW IF NOT EXISTS resolution_facts AS
SELECT r.ticket_id AS ticket_id, r.episode AS episode, r.engineer_id AS engineer_id,
       r.resolved_at AS resolved_at, r.episode_start AS episode_start, r.aht_s AS aht_s,
       r.aht_bh_s AS aht_bh_s, r.escalated AS escalated, r.fcr AS fcr,
       r.reopened_7d AS reopened_7d, r.reopened_30d AS reopened_30d,
       r.customer_id AS customer_id, r.category AS category, r.priority AS priority,
       (le7.n - lt.n - (own.opened_at >= r.resolved_at AND own.opened_at <= r.until_7d)) > 0
           AS new_ticket_7d,
       (le30.n - lt.n - (own.opened_at >= r.resolved_at AND own.opened_at <= r.until_30d)) > 0
           AS new_ticket_30d,
       (r.reopened_7d OR new_ticket_7d) AS repeat_7d,
       (r.reopened_30d OR new_ticket_30d) AS repeat_30d
FROM (SELECT *, resolved_at + INTERVAL 7 DAY AS until_7d, resolved_at + INTERVAL 30 DAY AS until_30d
      FROM resolutions FINAL) AS r
ASOF LEFT JOIN opened_counts AS lt
    ON lt.customer_id = r.customer_id AND lt.category = r.category
   AND lt.opened_at < r.resolved_at
ASOF LEFT JOIN opened_counts AS le7
    ON le7.customer_id = r.customer_id AND le7.category = r.category
   AND le7.opened_at <= r.until_7d
ASOF LEFT JOIN opened_counts AS le30
    ON le30.customer_id = r.customer_id AND le30.category = r.category
   AND le30.opened_at <= r.until_30d
LEFT JOIN (SELECT ticket_id, opened_at FROM tickets FINAL) AS own ON own.ticket_id = r.ticket_id
SETTINGS join_use_nulls = 0;

CREATE OR REPLACE VIEW resolution_samples AS
SELECT r.engineer_id AS engineer_id, ro.team_id AS team_id, r.resolved_at AS at,
       r.ticket_id AS ticket_id, r.episode AS episode, r.priority AS priority,
       r.aht_s AS aht_s, r.aht_bh_s AS aht_bh_s, r.fcr AS fcr,
       r.repeat_7d AS repeat_7d, r.repeat_30d AS repeat_30d
FROM resolution_facts AS r
LEFT JOIN team_of AS ro ON ro.engineer_id = r.engineer_id;

DROP TABLE IF EXISTS repeats;

-- 2. Events waiting for their ticket-opened (kpis.md: held, not dropped), one row each while
-- held; the row is deleted (tombstone) once the opened arrives. held_since is when it arrived.
CREATE TABLE IF NOT EXISTS held_events (
    ticket_id   String,
    event_id    String,
    event_kind  LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    held_since  DateTime64(3, 'UTC'),
    version     UInt64,
    deleted     UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (ticket_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- 3. A ticket's row counts its surveys, as it counts its escalations and episodes: facts that
-- disagree with their ticket's row reveal a lost message (servicescore/invariants.py).
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS surveys UInt16 DEFAULT 0 AFTER escalations;

-- 4. A dead letter always fits its topic: a large message keeps a prefix of its raw bytes,
-- with the full length and the SHA-256 of the whole message.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS raw_bytes UInt64 DEFAULT 0;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS raw_sha256 String DEFAULT '';
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS truncated Bool DEFAULT false
