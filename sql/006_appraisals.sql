-- The period close (appraisal.md "Period close"). ClickHouse has no multi-table transaction, so
-- a close is made visible by one row written last (appraisal/close.py):
--   1. close_samples: the KPI samples of the period, copied from the sample views in one
--      statement under a new close id (with the SLA flags and review weights of that moment);
--   2. appraisals: one row per engineer, scored from that copy;
--   3. closes: the commit marker, with the scheme and the content hash of the copy.
-- Readers see only closes with a marker: a crash or a storage error before it leaves rows
-- nobody reads, and the next attempt starts over under another id. A close superseding an
-- earlier one names it in its marker: one row makes the new close current and the old one
-- superseded, and every row of the old one stays.

CREATE TABLE IF NOT EXISTS close_samples (
    close_id      String,
    family        LowCardinality(String),
    engineer_id   String,
    team_id       Nullable(String),
    at            DateTime64(3, 'UTC'),
    ticket_id     Nullable(String),
    episode       Nullable(UInt16),
    priority      Nullable(String),
    aht_s         Nullable(Float64),
    aht_bh_s      Nullable(Float64),
    fcr           Nullable(Bool),
    repeat_7d     Nullable(Bool),
    repeat_30d    Nullable(Bool),
    frt_s         Nullable(Float64),
    frt_bh_s      Nullable(Float64),
    onsite_s      Nullable(Float64),
    onsite_bh_s   Nullable(Float64),
    target_s      Nullable(Float64),
    within_target Nullable(Bool),
    csat          Nullable(UInt8),
    nps           Nullable(UInt8),
    severity      Nullable(String),
    dimension     Nullable(String),
    assessor_role Nullable(String),
    score         Nullable(Float64),
    weight        Nullable(Float64)
) ENGINE = MergeTree
ORDER BY (close_id, family, engineer_id, at);

CREATE TABLE IF NOT EXISTS appraisals (
    close_id       String,
    period         String,
    engineer_id    String,
    role           LowCardinality(String),
    score          Nullable(String),
    grade          LowCardinality(String),
    grade_label    String,
    bonus          Nullable(String),
    flags          Array(String),
    kpis           String,
    scheme_version String,
    closed_at      DateTime64(3, 'UTC'),
    content_hash   String
) ENGINE = MergeTree
ORDER BY (period, close_id, engineer_id);

CREATE TABLE IF NOT EXISTS closes (
    close_id       String,
    period         String,
    kind           LowCardinality(String),
    closed_at      DateTime64(3, 'UTC'),
    scheme_version String,
    scheme         String,
    content_hash   String,
    engineers      UInt32,
    supersedes     Nullable(String),
    reason         Nullable(String)
) ENGINE = MergeTree
ORDER BY (period, closed_at, close_id);

-- Every committed close with its status: superseded once a later committed close names it.
CREATE VIEW IF NOT EXISTS close_status AS
SELECT c.*, if(s.close_id != '', 'superseded', 'frozen') AS status,
       nullIf(s.close_id, '') AS superseded_by, s.reason AS superseded_reason
FROM closes AS c
LEFT JOIN (SELECT close_id, supersedes, reason FROM closes WHERE supersedes IS NOT NULL) AS s
    ON s.supersedes = c.close_id
SETTINGS join_use_nulls = 0
