-- Facts written by the sink. Every table is a ReplacingMergeTree(version, deleted) keyed by the
-- fact's identity: a redelivered or re-inserted fact collapses into one row, a newer version
-- replaces an older one, a tombstone (deleted = 1) removes it. Reads use FINAL.
-- No PARTITION BY on event time: a correction may move a fact's time, and replacing only
-- works inside one partition.

CREATE TABLE IF NOT EXISTS tickets (
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
    first_response_at  Nullable(DateTime64(3, 'UTC')),
    first_responder_id Nullable(String),
    frt_s              Nullable(Float64),
    frt_bh_s           Nullable(Float64),
    onsite_at          Nullable(DateTime64(3, 'UTC')),
    onsite_engineer_id Nullable(String),
    onsite_s           Nullable(Float64),
    onsite_bh_s        Nullable(Float64),
    version            UInt64,
    deleted            UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY ticket_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS resolutions (
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
ORDER BY (ticket_id, episode)
SETTINGS non_replicated_deduplication_window = 1000;

-- Written by the (customer_id, category) agent: does another ticket of the same customer and
-- category follow the resolution within 7 / 30 days?
CREATE TABLE IF NOT EXISTS repeats (
    ticket_id      String,
    episode        UInt16,
    new_ticket_7d  Bool,
    new_ticket_30d Bool,
    version        UInt64,
    deleted        UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (ticket_id, episode)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS surveys (
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
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS escalations (
    event_id       String,
    ticket_id      String,
    engineer_id    String,
    to_engineer_id Nullable(String),
    escalated_at   DateTime64(3, 'UTC'),
    episode        UInt16,
    version        UInt64,
    deleted        UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS complaints (
    event_id    String,
    engineer_id String,
    filed_at    DateTime64(3, 'UTC'),
    severity    LowCardinality(String),
    ticket_id   Nullable(String),
    reason      Nullable(String),
    version     UInt64,
    deleted     UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

-- effective_at: the first instant of `period` in the business timezone, else occurred_at.
CREATE TABLE IF NOT EXISTS assessments (
    event_id      String,
    engineer_id   String,
    dimension     LowCardinality(String),
    score         Float64,
    assessor_role LowCardinality(String),
    assessor_id   Nullable(String),
    period        Nullable(String),
    effective_at  DateTime64(3, 'UTC'),
    version       UInt64,
    deleted       UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;
