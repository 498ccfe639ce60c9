-- The window's resolutions with their repeat flags (resolution_facts_between, sql/007), with
-- the same answer from less work: the tickets are no longer grouped by their opening instant
-- before the ASOF join. At 10 M facts, grouping the window's tickets by (key, instant) and then
-- finding each instant's successor with a window function cost 0.13 CPU-seconds; one window
-- function over the tickets themselves costs 0.07.
-- A new ticket follows resolution R within N days iff the first ticket of the customer and
-- category other than R's own opened at or after R was opened by R + N days. Each ticket of
-- the window's range carries its neighbours in its key's opening order (the one before and the
-- one after; tickets opened at the same instant are next to each other, in any order). The
-- ASOF join finds one ticket T of the first instant at or after R. That instant holds another
-- ticket than T iff a neighbour of T was opened at the same instant; then, or when T is not R's
-- own ticket, the first other ticket is at T's instant. Otherwise T, R's own ticket, is alone
-- there, and the first other ticket is the next one in the order (T's successor), if any.
-- Exactly what sql/007 gave, for any ties (which of the tied tickets the ASOF join finds does not
-- matter: they all have a neighbour at that instant). The columns, parameters, ranges read
-- (the tickets opened in [from, to + 30 days]) and settings are those of sql/007;
-- resolution_facts and resolution_samples_between read this view by name.
CREATE OR REPLACE VIEW resolution_facts_between AS
WITH fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') AS lo,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS hi,
     fromUnixTimestamp64Milli(least({to_ms:Int64} + 2592000000, 10413791999999), 'UTC') AS horizon
SELECT * EXCEPT (next_other) FROM (
SELECT r.ticket_id AS ticket_id, r.episode AS episode, r.engineer_id AS engineer_id,
       r.resolved_at AS resolved_at, r.episode_start AS episode_start, r.aht_s AS aht_s,
       r.aht_bh_s AS aht_bh_s, r.escalated AS escalated, r.fcr AS fcr,
       r.reopened_7d AS reopened_7d, r.reopened_30d AS reopened_30d,
       r.customer_id AS customer_id, r.category AS category, r.priority AS priority,
       if(NOT o.found, NULL,
          if(ifNull(o.before_at = o.opened_at, false) OR ifNull(o.after_at = o.opened_at, false)
                 OR o.ticket_id != r.ticket_id,
             toNullable(o.opened_at), o.after_at)) AS next_other,
       ifNull(next_other <= r.resolved_at + INTERVAL 7 DAY, false) AS new_ticket_7d,
       ifNull(next_other <= r.resolved_at + INTERVAL 30 DAY, false) AS new_ticket_30d,
       (r.reopened_7d OR new_ticket_7d) AS repeat_7d,
       (r.reopened_30d OR new_ticket_30d) AS repeat_30d
FROM (SELECT *, concat(toString(length(customer_id)), ':', customer_id, category) AS same
      FROM resolutions FINAL WHERE resolved_at >= lo AND resolved_at < hi) AS r
ASOF LEFT JOIN (
    SELECT same, opened_at, ticket_id, true AS found,
           lagInFrame(toNullable(opened_at)) OVER opening AS before_at,
           leadInFrame(toNullable(opened_at)) OVER opening AS after_at
    FROM (SELECT concat(toString(length(customer_id)), ':', customer_id, category) AS same,
                 opened_at, ticket_id
          FROM tickets FINAL WHERE opened_at >= lo AND opened_at <= horizon)
    WINDOW opening AS (PARTITION BY same ORDER BY opened_at
                       ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)) AS o
    ON o.same = r.same AND o.opened_at >= r.resolved_at)
SETTINGS join_use_nulls = 0, do_not_merge_across_partitions_select_final = 1
