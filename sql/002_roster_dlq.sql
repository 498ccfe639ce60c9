-- The roster (reference data): the latest import of an engineer wins.
CREATE TABLE IF NOT EXISTS roster (
    engineer_id String,
    name        String,
    role        LowCardinality(String),
    team_id     Nullable(String),
    active      Bool,
    updated_at  DateTime64(3, 'UTC'),
    version     UInt64,
    deleted     UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY engineer_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Dead letters, as published to events-dlq; one row per refused message.
CREATE TABLE IF NOT EXISTS dead_letters (
    topic       String,
    partition   UInt32,
    offset      UInt64,
    raw_base64  String,
    reason      String,
    rejected_at DateTime64(3, 'UTC'),
    replayed_at Nullable(DateTime64(3, 'UTC')),
    version     UInt64,
    deleted     UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;
