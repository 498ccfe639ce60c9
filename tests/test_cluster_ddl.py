"""The cluster variant of the migrations (servicescore/ops/cluster.py), derived from sql/.

ClickHouse's own parser (in chDB) reads every statement. Every table of the single-node schema is
either replicated whole (the reference tables) or sharded as ``T_local`` behind a Distributed
``T`` keyed by the hash of its identity. Read back as single-node DDL (ON CLUSTER and the
replication arguments removed, the Distributed tables left out), the cluster schema is the
single-node one: same tables, columns, types, engines and keys, the views compile, and the
migrations are recorded as ``servicescore migrate`` records them, so the services starting
against the cluster find nothing to do. A migration of a kind the rewrite does not know is
refused naming its file; a partitioning migration (new table, copy, exchange, drop) is known.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from servicescore.ops import cluster
from servicescore.storage.clickhouse import Storage, migrations

SQL = Path(__file__).resolve().parents[1] / "sql"
DISTRIBUTED = re.compile(r"^CREATE TABLE (?:IF NOT EXISTS )?(\w+) ON CLUSTER '\{cluster\}' AS "
                         r"(\w+) ENGINE = Distributed\('\{cluster\}', '(\w+)', '(\w+)', (.+)\)$")
REPLICATED = re.compile(r"ENGINE = Replicated(\w+)\('([^']*)', '\{replica\}'(?:, )?")


@pytest.fixture(scope="module")
def databases(chdb_dsn, tmp_path_factory):
    """``make(folder)``: a database migrated with the migrations in ``folder``; without one, a
    database with only the migrations record (as `servicescore migrate` creates it)."""
    made = []
    nothing = tmp_path_factory.mktemp("no_migrations")

    def make(folder: Path | None = None) -> Storage:
        storage = Storage(chdb_dsn, f"cluster_{uuid.uuid4().hex[:12]}")
        made.append(storage)
        storage.migrate(nothing if folder is None else folder)
        return storage

    yield make
    for storage in made:
        storage.command(f"DROP DATABASE IF EXISTS {storage.database}")


def formatted(storage: Storage, statement: str) -> str:
    """ClickHouse's parser reads the statement and prints it back (a syntax error raises)."""
    return storage.rows("SELECT formatQuery({q:String}) AS f", {"q": statement})[0]["f"]


def single_node(statements: list[str]) -> list[str]:
    """The cluster DDL as one node would hold its local tables: no ON CLUSTER, no replication
    arguments, ``T_local`` named ``T``, the Distributed tables (and their ALTERs, DROPs) left
    out: what must equal the single-node schema."""
    fronts = {m[1] for s in statements if (m := DISTRIBUTED.match(s))}
    out = []
    for statement in statements:
        if statement.startswith("CREATE DATABASE") or DISTRIBUTED.match(statement):
            continue
        if re.match(rf"^(ALTER|DROP) TABLE (IF EXISTS )?({'|'.join(fronts)}) ON CLUSTER",
                    statement):
            continue
        statement = statement.replace(" ON CLUSTER '{cluster}'", "")
        statement = REPLICATED.sub(lambda m: f"ENGINE = {m[1]}(", statement)
        out.append(re.sub(r"\b(\w+)_local\b", r"\1", statement))
    return out


def schema(storage: Storage) -> dict:
    tables = storage.rows(
        "SELECT name, engine, engine_full, sorting_key FROM system.tables "
        "WHERE database = {db:String} ORDER BY name", {"db": storage.database})
    columns = storage.rows(
        "SELECT table, name, type, position, default_kind, default_expression "
        "FROM system.columns WHERE database = {db:String} ORDER BY table, position",
        {"db": storage.database})
    for table in tables:  # replicated tables deduplicate inserts without this setting
        table["engine_full"] = re.sub(r"(, )?non_replicated_deduplication_window = \d+", "",
                                      table["engine_full"]).replace("SETTINGS , ", "SETTINGS ")
        table["engine_full"] = table["engine_full"].removesuffix(" SETTINGS ")
    return {"tables": tables, "columns": columns}


def check_equivalent(databases, folder: Path, known) -> list[str]:
    """The cluster DDL of ``known`` parses and, read back on one node, is the schema
    ``servicescore migrate`` builds from ``folder``."""
    statements = cluster.cluster_ddl("servicescore", known=known)
    reference = databases(folder)
    for statement in statements:
        formatted(reference, statement)
    rebuilt = databases()
    for statement in single_node(statements)[1:]:  # [0]: schema_migrations exists already
        rebuilt.command(statement)
    assert schema(rebuilt) == schema(reference)
    assert rebuilt.pending(folder) == []  # `servicescore migrate` has nothing left to do
    return statements


def test_every_statement_parses_and_the_local_schema_is_the_single_node_one(databases):
    statements = check_equivalent(databases, SQL, migrations())
    assert all("ON CLUSTER '{cluster}'" in s for s in statements
               if not s.startswith("INSERT INTO"))


def test_every_fact_table_is_sharded_by_its_identity_behind_a_distributed_table(databases):
    reference = databases(SQL)
    statements = cluster.cluster_ddl("sales")
    tables = {r["name"]: r for r in reference.rows(
        "SELECT name, engine, sorting_key FROM system.tables WHERE database = {db:String} "
        "AND engine LIKE '%MergeTree'", {"db": reference.database})}
    fronts, created = {}, {}
    for statement in statements:  # in order: a front may be dropped and made again (sql/007)
        if front := DISTRIBUTED.match(statement):
            fronts[front[1]] = front
        found = re.match(r"^CREATE TABLE (?:IF NOT EXISTS )?(\w+) ON CLUSTER", statement)
        engine = REPLICATED.search(statement)
        if found and engine:
            created[found[1]] = (engine[1], engine[2])
        dropped = re.match(r"^DROP TABLE (?:IF EXISTS )?(\w+) ", statement)
        if dropped:
            created.pop(dropped[1], None)
            fronts.pop(dropped[1], None)
    assert set(tables) == cluster.REFERENCE | set(fronts)
    for name, table in tables.items():
        if name in cluster.REFERENCE:
            # one replica set over the whole cluster: every node holds all of it
            assert created[name] == (table["engine"], cluster.WHOLE_PATH) and name not in fronts
            continue
        assert created[f"{name}_local"] == (table["engine"], cluster.SHARD_PATH), name
        front = fronts[name]
        assert (front[2], front[3], front[4]) == (f"{name}_local", "sales", f"{name}_local")
        # every version of a fact lands on the shard of its identity: FINAL collapses them
        assert front[5] == f"cityHash64({table['sorting_key']})", name
    assert "repeats" not in fronts and "repeats_local" not in created  # dropped by 004


def test_views_and_inserts_name_the_distributed_tables_never_the_local_ones():
    for statement in cluster.cluster_ddl("servicescore"):
        if re.match(r"^(CREATE (OR REPLACE )?VIEW|INSERT INTO)", statement):
            assert "_local" not in statement, statement


def test_only_later_migrations_are_emitted_after_a_version():
    later = cluster.cluster_ddl("servicescore", after=5)
    recorded = [s for s in later if s.startswith("INSERT INTO schema_migrations")]
    assert [re.search(r"\((\d+),", s)[1] for s in recorded] == [
        str(m.version) for m in migrations() if m.version > 5]
    assert any("close_samples_local" in s for s in later)
    assert not any("CREATE TABLE IF NOT EXISTS tickets_local" in s for s in later)


PARTITIONED = """
-- One month per partition (a correction may not move a fact's time: facts keep their
-- partition), so FINAL can merge each month on its own.
CREATE TABLE IF NOT EXISTS held_events_new (
    ticket_id   String,
    event_id    String,
    event_kind  LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    held_since  DateTime64(3, 'UTC'),
    version     UInt64,
    deleted     UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
PARTITION BY toYYYYMM(held_since)
ORDER BY (ticket_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 8192;

INSERT INTO held_events_new SELECT * FROM held_events;
EXCHANGE TABLES held_events AND held_events_new;
DROP TABLE IF EXISTS held_events_new;
ALTER TABLE held_events ADD COLUMN IF NOT EXISTS note String DEFAULT '';
OPTIMIZE TABLE held_events FINAL
"""


def test_a_partitioning_migration_has_its_cluster_form(databases, tmp_path):
    """The kind of migration being written now: a new partitioned table, a copy, an exchange,
    a drop, a column; its cluster form parses and matches its single-node result."""
    for path in SQL.glob("*.sql"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "099_partitioned.sql").write_text(PARTITIONED, encoding="utf-8")
    statements = check_equivalent(databases, tmp_path, migrations(tmp_path))
    assert ("EXCHANGE TABLES held_events_local AND held_events_new_local ON CLUSTER '{cluster}'"
            in statements)
    assert any(s.startswith("OPTIMIZE TABLE held_events_local ON CLUSTER") for s in statements)
    assert any(s.startswith("ALTER TABLE held_events ON CLUSTER") for s in statements)


@pytest.mark.parametrize("statement", [
    "CREATE MATERIALIZED VIEW v TO tickets AS SELECT * FROM tickets",
    "CREATE TABLE scratch (a String) ENGINE = Memory",
    "GRANT SELECT ON servicescore.* TO grafana",
])
def test_a_statement_without_a_cluster_rule_is_refused_naming_its_migration(tmp_path, statement):
    (tmp_path / "001_facts.sql").write_text((SQL / "001_facts.sql").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    (tmp_path / "002_new.sql").write_text(statement, encoding="utf-8")
    with pytest.raises(cluster.NoClusterRule, match=r"^sql/002_new\.sql: "):
        cluster.cluster_ddl("servicescore", known=migrations(tmp_path))


def test_the_command_prints_statements_clickhouse_client_can_run(capsys):
    assert cluster.main(["--database", "sales"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("-- servicescore schema for a ClickHouse cluster, database sales")
    body = "\n".join(line for line in printed.splitlines() if not line.startswith("--"))
    assert [s.strip() for s in body.split(";\n") if s.strip()] == cluster.cluster_ddl("sales")
