"""The embedded ClickHouse (chDB): migrations (checksums of applied files), the facts tables'
column contract, replacing by version, tombstones, insert deduplication, the one-process-per-folder
lock, the database a DSN names, and reading as a read-only ClickHouse user."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from importlib.resources import as_file, files
from pathlib import Path

import pytest

from schemas.facts import FACT_TABLES
from servicescore.app.reader import LocalReader
from servicescore.app.service import open_storage
from servicescore.core.errors import ConfigError, StorageError
from servicescore.core.settings import load_settings
from servicescore.storage.clickhouse import Storage, migrations

ROOT = Path(__file__).resolve().parents[1]
T0 = 1793668500123  # 2026-11-03T09:15:00.123+08:00, as UTC epoch ms
HOUR = 3_600_000

# One realistic fact per kind: every column, Chinese text, None where the column is Nullable.
FACTS = {
    "ticket": {
        "ticket_id": "T-1", "customer_id": "C-上海-001", "category": "打印机/卡纸",
        "priority": "P2", "channel": "phone", "team_id": "华东一组", "assignee_id": None,
        "requires_onsite": True, "opened_at": T0, "status": "open", "episodes": 1,
        "episode_start": T0, "owner_id": "E-7", "escalations": 0, "surveys": 1,
        "first_response_at": T0 + 900,
        "first_responder_id": "E-7", "frt_s": 0.9, "frt_bh_s": None, "onsite_at": None,
        "onsite_engineer_id": None, "onsite_s": None, "onsite_bh_s": None},
    "resolution": {
        "ticket_id": "T-1", "episode": 2, "engineer_id": "E-9", "resolved_at": T0 + 5 * HOUR,
        "episode_start": T0 + HOUR, "aht_s": 14400.0, "aht_bh_s": 12345.678, "escalated": True,
        "fcr": False, "reopened_7d": True, "reopened_30d": True, "customer_id": "C-上海-001",
        "category": "打印机/卡纸", "priority": "P1"},
    "survey": {
        "event_id": "e-survey-1", "ticket_id": "T-1", "submitted_at": T0 + 24 * HOUR,
        "engineer_id": "E-9", "credited_by": "resolution", "csat": 5, "nps": None},
    "escalation": {
        "event_id": "e-esc-1", "ticket_id": "T-1", "engineer_id": "E-7", "to_engineer_id": None,
        "escalated_at": T0 + 2 * HOUR, "episode": 1},
    "complaint": {
        "event_id": "e-complaint-1", "engineer_id": "E-7", "filed_at": T0 + 48 * HOUR,
        "severity": "major", "ticket_id": None, "reason": "上门迟到两小时，态度冷淡"},
    "assessment": {
        "event_id": "e-assess-1", "engineer_id": "E-7", "dimension": "attitude", "score": 87.5,
        "assessor_role": "supervisor", "assessor_id": None, "period": "2026-11",
        "effective_at": 1793462400000},
    "roster": {
        "engineer_id": "E-7", "name": "张伟", "role": "field_engineer", "team_id": None,
        "active": False, "updated_at": T0},
    "dead_letter": {
        "topic": "ticket-opened", "partition": 3, "offset": 4_294_967_296,
        "raw_base64": "e+Wdj+eahCBKU09O", "reason": "not valid UTF-8 JSON: 坏的",
        "rejected_at": T0, "replayed_at": None, "raw_bytes": 12,
        "raw_sha256": "3162ae57441d57acbd7eea3df1272363ccce3955d5a38d8d1cd4337baed5c33d",
        "truncated": False},
    "held": {
        "ticket_id": "T-2", "event_id": "e-resolved-9", "event_kind": "resolved",
        "occurred_at": T0, "held_since": T0 + HOUR},
}
# A later correction of each fact: one non-key column changed.
CHANGES = {"ticket": {"status": "resolved"}, "resolution": {"engineer_id": "E-10"},
           "survey": {"csat": 2},
           "escalation": {"to_engineer_id": "E-9"}, "complaint": {"severity": "minor"},
           "assessment": {"score": 91.0}, "roster": {"team_id": "华南二组"},
           "dead_letter": {"replayed_at": T0 + HOUR}, "held": {"held_since": T0}}


def insert(storage: Storage, kind: str, *facts: dict, token: str | None = None) -> None:
    spec = FACT_TABLES[kind]
    storage.insert(spec.table, [spec.row(f) for f in facts], spec.columns, token=token)


def read_final(storage: Storage, kind: str) -> list[dict]:
    """The table's rows under FINAL, timestamps back as UTC epoch ms, version/deleted dropped."""
    spec = FACT_TABLES[kind]
    types = {r["name"]: r["type"] for r in storage.rows(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = {table:String}", {"table": spec.table})}
    shown = [f"toUnixTimestamp64Milli(`{c}`) AS `{c}`" if "DateTime64" in types[c] else f"`{c}`"
             for c in spec.types]
    return storage.rows(f"SELECT {', '.join(shown)} FROM {spec.table} FINAL")


def count(storage: Storage, kind: str) -> int:
    return storage.rows(f"SELECT count() AS n FROM {FACT_TABLES[kind].table}")[0]["n"]


def test_all_migrations_apply_to_a_fresh_database(chdb_dsn):
    storage = Storage(chdb_dsn, f"fresh_{uuid.uuid4().hex[:12]}")
    try:
        assert storage.migrate() == [m.name for m in migrations()] != []
        tables = {r["name"] for r in storage.rows(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine != 'View'")}
        assert {t.table for t in FACT_TABLES.values()} | {"schema_migrations"} <= tables
        views = {r["name"] for r in storage.rows(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine = 'View'")}
        assert {"resolution_samples", "first_response_samples", "survey_samples",
                "open_tickets"} <= views
    finally:
        storage.command(f"DROP DATABASE IF EXISTS {storage.database}")


def test_second_migrate_applies_nothing(storage):
    assert storage.migrate() == []
    recorded = storage.rows("SELECT version, name FROM schema_migrations ORDER BY version")
    assert recorded == [{"version": m.version, "name": m.name} for m in migrations()]


def test_every_fact_table_has_a_fact_here():
    assert set(FACTS) == set(FACT_TABLES) == set(CHANGES)
    assert all(set(FACTS[k]) == set(FACT_TABLES[k].types) for k in FACTS)


@pytest.mark.parametrize("kind", FACT_TABLES)
def test_fact_round_trips(storage, kind):
    insert(storage, kind, {**FACTS[kind], "v": 1, "del": 0})
    assert read_final(storage, kind) == [FACTS[kind]]


@pytest.mark.parametrize("kind", FACT_TABLES)
def test_newer_version_replaces_older(storage, kind):
    insert(storage, kind, {**FACTS[kind], "v": 1, "del": 0})
    insert(storage, kind, {**FACTS[kind], **CHANGES[kind], "v": 2, "del": 0})
    assert read_final(storage, kind) == [{**FACTS[kind], **CHANGES[kind]}]


def test_late_older_version_does_not_win(storage):
    insert(storage, "ticket", {**FACTS["ticket"], "status": "resolved", "v": 5, "del": 0})
    insert(storage, "ticket", {**FACTS["ticket"], "v": 4, "del": 0})
    assert [r["status"] for r in read_final(storage, "ticket")] == ["resolved"]


@pytest.mark.parametrize("kind", FACT_TABLES)
def test_tombstone_removes_the_fact(storage, kind):
    spec = FACT_TABLES[kind]
    key = {c: FACTS[kind][c] for c in spec.key}  # a tombstone carries only the key
    insert(storage, kind, {**FACTS[kind], "v": 1, "del": 0})
    insert(storage, kind, {**key, "v": 2, "del": 1})
    assert read_final(storage, kind) == []


def test_tombstone_leaves_other_identities(storage):
    other = {**FACTS["survey"], "event_id": "e-survey-2"}
    insert(storage, "survey", {**FACTS["survey"], "v": 1, "del": 0}, {**other, "v": 1, "del": 0})
    insert(storage, "survey", {"event_id": "e-survey-1",
                               "submitted_at": FACTS["survey"]["submitted_at"], "v": 2, "del": 1})
    assert read_final(storage, "survey") == [other]


MONTH_MS = 31 * 86_400_000


@pytest.mark.parametrize("kind", [k for k, t in FACT_TABLES.items() if t.moves])
def test_a_fact_whose_time_moves_to_another_month_is_one_row_in_its_new_partition(storage,
                                                                                   kind):
    """sql/007: the time is in the identity, so the corrected fact is a new row in its new
    month and the tombstone with the old time removes the old row from the old month."""
    spec = FACT_TABLES[kind]
    old = {**FACTS[kind], "v": 1, "del": 0}
    moved = {**FACTS[kind], spec.moves: FACTS[kind][spec.moves] - MONTH_MS, "v": 2, "del": 0}
    insert(storage, kind, old)
    insert(storage, kind, moved, {**{c: old[c] for c in spec.key}, "v": 2, "del": 1})

    assert read_final(storage, kind) == [{k: v for k, v in moved.items() if k not in ("v", "del")}]
    rows = storage.rows(f"SELECT _partition_id AS month, count() AS n FROM {spec.table} FINAL "
                        "GROUP BY month")
    assert [r["n"] for r in rows] == [1]
    assert rows[0]["month"] == storage.rows(
        f"SELECT toString(toYYYYMM(fromUnixTimestamp64Milli({moved[spec.moves]}, 'UTC'))) AS m"
    )[0]["m"]


def test_a_window_reads_only_its_months(storage):
    """The 30 days before 2026-12-01 read November's part only (parts of four months)."""
    spec = FACT_TABLES["resolution"]
    at = FACTS["resolution"]["resolved_at"]  # November 2026
    for month in range(4):
        insert(storage, "resolution", {**FACTS["resolution"], "episode": month + 1,
                                       "resolved_at": at - month * MONTH_MS, "v": 1, "del": 0})
    to_ms = 1_796_083_200_000  # 2026-12-01T00:00Z
    plan = "\n".join(r["explain"] for r in storage.rows(
        "EXPLAIN indexes = 1 SELECT count() FROM resolution_samples_between("
        "from_ms = {from_ms:Int64}, to_ms = {to_ms:Int64})",
        {"from_ms": to_ms - 30 * 86_400_000, "to_ms": to_ms}))
    reads = plan[plan.index(f"ReadFromMergeTree ({storage.database}.{spec.table})"):]
    pruned = reads[reads.index("Indexes:"):].split("Parts: ", 1)[1].split("\n")[0]
    assert pruned == "1/4", plan  # one part per month was written; November's is read


@pytest.mark.parametrize("kind", FACT_TABLES)
def test_same_batch_twice_with_one_token_is_stored_once(storage, kind):
    batch = [{**FACTS[kind], "v": 1, "del": 0}]
    insert(storage, kind, *batch, token=f"{kind}|facts:0:10-19")
    insert(storage, kind, *batch, token=f"{kind}|facts:0:10-19")
    assert count(storage, kind) == 1  # without FINAL


def test_bad_database_name_raises_storage_error(chdb_dsn):
    with pytest.raises(StorageError, match="bad database name"):
        Storage(chdb_dsn, "servicescore; DROP DATABASE x")


LOCK_PROBE = """
import sys
from servicescore.core.errors import StorageLocked
from servicescore.storage.clickhouse import Storage
try:
    Storage(sys.argv[1], "other")
except StorageLocked as exc:
    print(f"{type(exc).__name__}: {exc}")
    raise SystemExit(3)
"""


def test_second_process_cannot_open_the_same_folder(storage, chdb_dsn):
    probe = subprocess.run([sys.executable, "-c", LOCK_PROBE, chdb_dsn],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 3, probe.stderr
    assert probe.stdout.startswith("StorageLocked: ") and len(probe.stdout.splitlines()) == 1
    assert "in use by another process" in probe.stdout and probe.stderr == ""


# --------------------------------------------------------------------------- the DSN's database


@pytest.mark.parametrize(("dsn", "setting", "used"), [
    ("http://user:pw@host:8123/sales", "servicescore", "sales"),
    ("http://user:pw@host:8123/sales", "other", "sales"),  # the DSN wins over the setting
    ("https://user:pw@host:8443/sales/?compress=lz4", "other", "sales"),
    ("http://host:8123/?database=sales", "other", "sales"),
    ("http://user:pw@host:8123", "other", "other"),  # the DSN names none
    ("http://user:pw@host:8123/", "other", "other"),
    ("chdb:///var/lib/servicescore/clickhouse", "other", "other"),  # the path is a folder
    ("chdb:///var/lib/servicescore/clickhouse?database=sales", "other", "sales"),
    (None, "other", "other"),  # the embedded default
])
def test_the_database_a_dsn_names_is_the_one_used(dsn, setting, used):
    settings = load_settings(clickhouse_dsn=dsn, clickhouse_database=setting)
    assert settings.database == used


@pytest.mark.parametrize(("variable", "value"), [
    ("clickhouse_dsn", "http://user:pw@host:8123/my-db"),
    ("clickhouse_database", "sales; DROP DATABASE x"),
])
def test_a_database_name_that_is_no_name_is_a_config_error(variable, value):
    with pytest.raises(ConfigError, match=f"SERVICESCORE_{variable.upper()}: .*not a database"):
        load_settings(**{variable: value})


def test_storage_opens_the_database_the_dsn_names(chdb_dsn, storage):
    named = f"named_{uuid.uuid4().hex[:12]}"
    settings = load_settings(clickhouse_dsn=f"{chdb_dsn}?database={named}",
                             clickhouse_database=storage.database)
    opened = open_storage(settings, migrate=True)
    try:
        assert opened.database == named
        assert opened.rows("SELECT currentDatabase() AS db") == [{"db": named}]
        assert storage.rows("SELECT count() AS n FROM schema_migrations")[0]["n"] == \
            len(migrations())  # the setting's database: untouched, migrated once by its fixture
    finally:
        opened.command(f"DROP DATABASE IF EXISTS {named}")


# --------------------------------------------------------------------------- reading only


def database_exists(storage: Storage, name: str) -> bool:
    return bool(storage.rows("SELECT 1 FROM system.databases WHERE name = {name:String}",
                             {"name": name}))


def read_only(chdb_dsn: str, database: str, level: int = 2):
    """A reader of ``database`` in a session ClickHouse holds to readonly=``level``, as a
    read-only user's profile would: 1 refuses DDL, writes and setting changes, 2 allows the
    setting changes a query may carry."""
    settings = load_settings(
        clickhouse_dsn=f"{chdb_dsn}?ch_readonly={level}&database={database}")
    return LocalReader(open_storage(settings), settings)


def stored_facts(storage: Storage) -> None:
    for kind in FACT_TABLES:
        insert(storage, kind, {**FACTS[kind], "v": 1, "del": 0})


# The read commands: kpis, tickets, live, held, check and dlq list, as the CLI asks them.
READS = {
    "kpis": lambda r: r.kpis(T0 - 24 * HOUR, T0 + 30 * 24 * HOUR),
    "tickets": lambda r: r.tickets(T0 - 24 * HOUR, T0 + 30 * 24 * HOUR),
    "live": lambda r: [(row["open_tickets"], row["oldest_open_since"]) for row in r.backlog()],
    "held": lambda r: [(row["ticket_id"], row["event_id"]) for row in r.held()],
    "check": lambda r: r.check(),
    "dlq list": lambda r: r.dead_letters(),
}


@pytest.mark.parametrize("read", READS)
def test_read_commands_work_as_a_read_only_user(chdb_dsn, storage, read):
    stored_facts(storage)
    expected = READS[read](LocalReader(storage, load_settings()))
    assert READS[read](read_only(chdb_dsn, storage.database)) == expected
    if read in ("tickets", "live", "held", "dlq list"):
        assert len(expected) == 1  # the stored fact was read, not an empty table


# `check` is left out: its query sets join_use_nulls (servicescore/queries/invariants.py), which
# a readonly=1 session refuses; a read-only user for `check` needs readonly=2.
@pytest.mark.parametrize("read", [r for r in READS if r != "check"])
def test_read_commands_work_at_readonly_1(chdb_dsn, storage, read):
    stored_facts(storage)
    expected = READS[read](LocalReader(storage, load_settings()))
    assert READS[read](read_only(chdb_dsn, storage.database, level=1)) == expected


@pytest.mark.parametrize("attempt", ["migrate", "create", "insert"])
@pytest.mark.parametrize("level", [1, 2])
def test_the_read_only_session_is_refused_any_ddl_or_write(chdb_dsn, storage, level, attempt):
    storage.command("DROP TABLE roster")  # a migration missing here would be DDL to apply
    storage.command("ALTER TABLE schema_migrations DELETE WHERE version = 2 "
                    "SETTINGS mutations_sync = 1")
    reader = read_only(chdb_dsn, storage.database, level)
    row = FACT_TABLES["survey"].row({**FACTS["survey"], "v": 1, "del": 0})
    attempts = {
        "migrate": reader.storage.migrate,
        "create": lambda: reader.storage.command("CREATE TABLE x (a UInt8) ENGINE = Memory"),
        "insert": lambda: reader.storage.insert("surveys", [row], FACT_TABLES["survey"].columns),
    }
    with pytest.raises(StorageError, match="readonly mode"):
        attempts[attempt]()
    assert count(storage, "survey") == 0
    assert storage.rows("SELECT count() AS n FROM system.tables WHERE database = "
                        "currentDatabase() AND name IN ('x', 'roster')") == [{"n": 0}]


def test_opening_a_missing_database_creates_nothing(chdb_dsn, storage):
    missing = f"missing_{uuid.uuid4().hex[:12]}"
    for reader in (read_only(chdb_dsn, missing),
                   LocalReader(Storage(chdb_dsn, missing), load_settings())):
        with pytest.raises(StorageError) as refused:
            reader.dead_letters()
        assert str(refused.value) == (f"ClickHouse database {missing} does not exist: "
                                      "run servicescore migrate first")
    assert not database_exists(storage, missing)


def test_a_read_on_an_unmigrated_database_says_migrate_first(chdb_dsn, storage):
    bare = f"bare_{uuid.uuid4().hex[:12]}"
    storage.command(f"CREATE DATABASE {bare}")  # e.g. made by a DBA, never migrated
    try:
        with pytest.raises(StorageError) as refused:
            read_only(chdb_dsn, bare).kpis(T0, T0 + HOUR)
        assert str(refused.value) == (
            f"ClickHouse database {bare} is not migrated ({len(migrations())} migration(s) "
            f"missing, from {migrations()[0].name}): run servicescore migrate first")
    finally:
        storage.command(f"DROP DATABASE IF EXISTS {bare}")


def test_a_read_behind_the_migrations_names_the_missing_one(chdb_dsn, storage):
    last = migrations()[-1]
    storage.command("ALTER TABLE schema_migrations DELETE WHERE version = {v:UInt32} "
                    "SETTINGS mutations_sync = 1", {"v": last.version})
    storage.command("DROP TABLE dead_letters")  # as if the release that adds it were new
    with pytest.raises(StorageError, match=f"1 migration\\(s\\) missing, from {last.name}\\)"):
        read_only(chdb_dsn, storage.database).dead_letters()


def test_a_failing_read_on_a_migrated_database_keeps_its_own_reason(storage):
    with pytest.raises(StorageError, match="UNKNOWN_TABLE") as refused:
        storage.rows("SELECT 1 FROM no_such_table")
    assert "migrate" not in str(refused.value)


# --------------------------------------------------------------------------- checksums


@pytest.fixture
def sql_copy(tmp_path) -> Path:
    """A copy of the shipped migrations, to edit."""
    with as_file(files("sql")) as shipped:
        for path in Path(shipped).glob("[0-9][0-9][0-9]_*.sql"):
            shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_the_partitioning_migration_keeps_the_current_facts(chdb_dsn, sql_copy):
    """sql/007 rebuilds the fact tables: a database at 006 keeps the newest version of each fact
    (one whose time an older version had elsewhere counts once) and none tombstoned."""
    for later in sql_copy.glob("00[7-9]_*.sql"):
        later.unlink()
    storage = Storage(chdb_dsn, f"upgrade_{uuid.uuid4().hex[:12]}")
    try:
        storage.migrate(sql_copy)
        moved = FACTS["resolution"]["resolved_at"] - MONTH_MS
        insert(storage, "resolution", {**FACTS["resolution"], "v": 1, "del": 0},
               {**FACTS["resolution"], "episode": 3, "v": 1, "del": 0})
        insert(storage, "resolution", {**FACTS["resolution"], "resolved_at": moved, "v": 2,
                                       "del": 0},
               {"ticket_id": "T-1", "episode": 3, "v": 2, "del": 1})
        insert(storage, "ticket", {**FACTS["ticket"], "v": 1, "del": 0})
        before = {kind: read_final(storage, kind) for kind in FACT_TABLES}

        assert storage.migrate() == [m.name for m in migrations()][6:]

        assert {kind: read_final(storage, kind) for kind in FACT_TABLES} == before
        assert [r["resolved_at"] for r in read_final(storage, "resolution")] == [moved]
        assert storage.rows("SELECT partition_key, sorting_key FROM system.tables "
                            "WHERE database = currentDatabase() AND name = 'resolutions'") == [
            {"partition_key": "toYYYYMM(resolved_at)",
             "sorting_key": "resolved_at, ticket_id, episode"}]
    finally:
        storage.command(f"DROP DATABASE IF EXISTS {storage.database}")


def test_an_edited_applied_migration_is_refused(chdb_dsn, sql_copy):
    storage = Storage(chdb_dsn, f"edited_{uuid.uuid4().hex[:12]}")
    try:
        assert storage.migrate(sql_copy) == [m.name for m in migrations()]
        edited = sql_copy / f"{migrations()[1].name}.sql"
        edited.write_text(edited.read_text(encoding="utf-8").replace(
            "CREATE TABLE", "CREATE TABLE  ", 1), encoding="utf-8")
        (sql_copy / "999_later.sql").write_text("CREATE TABLE later (a UInt8) "
                                                "ENGINE = MergeTree ORDER BY a;\n")
        with pytest.raises(StorageError) as refused:
            storage.migrate(sql_copy)
        message = str(refused.value)
        assert len(message.splitlines()) == 1
        assert message.startswith(f"sql/{edited.name} has changed since it was applied")
        assert "new migration" in message
        # Refused before anything: the later migration was not applied either.
        assert storage.rows("SELECT max(version) AS v FROM schema_migrations") == \
            [{"v": migrations()[-1].version}]
        assert not storage.rows("SELECT 1 FROM system.tables WHERE database = "
                                "currentDatabase() AND name = 'later'")
    finally:
        storage.command(f"DROP DATABASE IF EXISTS {storage.database}")


def test_an_unchanged_migration_set_with_a_new_file_applies_only_the_new_one(chdb_dsn, sql_copy):
    storage = Storage(chdb_dsn, f"grown_{uuid.uuid4().hex[:12]}")
    try:
        storage.migrate(sql_copy)
        (sql_copy / "999_later.sql").write_text("CREATE TABLE later (a UInt8) "
                                                "ENGINE = MergeTree ORDER BY a;\n")
        assert storage.migrate(sql_copy) == ["999_later"]
        assert storage.pending(sql_copy) == []
    finally:
        storage.command(f"DROP DATABASE IF EXISTS {storage.database}")
