"""The embedded ClickHouse (chDB): migrations, the facts tables' column contract, replacing by
version, tombstones, insert deduplication, and the one-process-per-folder lock."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from schemas.facts import FACT_TABLES
from servicescore.core.errors import StorageError
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
    insert(storage, "survey", {"event_id": "e-survey-1", "v": 2, "del": 1})
    assert read_final(storage, "survey") == [other]


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
    probe = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", LOCK_PROBE, chdb_dsn],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 3, probe.stderr
    assert probe.stdout.startswith("StorageLocked: ") and len(probe.stdout.splitlines()) == 1
    assert "in use by another process" in probe.stdout and probe.stderr == ""
