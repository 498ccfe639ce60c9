"""The `servicescore` command as a user runs it: a subprocess, configured by environment only.

Every run gets its own data folder (the embedded engine allows one process per folder)."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from schemas.period import parse_instant
from tests.plugins.kafka import delete_topics

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "servicescore")  # the running interpreter's entry point
COMMANDS = ["kafka", "topics", "migrate", "run", "worker", "sink", "kpis", "tickets", "roster",
            "dlq", "replay", "simulate"]  # the commands of cli.md that exist so far
SUBCOMMANDS = [*COMMANDS, "config", "live"]
ROSTER_CSV = ("engineer_id,name,role,team_id,active\n"
              "E-1,张伟,field_engineer,华东一组,true\n"
              "E-2,李娜,support_specialist,,是\n")


@pytest.fixture
def cli(tmp_path, kafka_bootstrap):
    """cli(*args, **env) -> CompletedProcess, with a data folder of this test's own."""

    def run(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
        environ.update({"SERVICESCORE_DATA_DIR": str(tmp_path / "data"),
                        "SERVICESCORE_KAFKA_BOOTSTRAP": kafka_bootstrap, **env})
        return subprocess.run([CLI, *args], cwd=ROOT, env=environ, capture_output=True,
                              text=True, timeout=timeout)

    return run


@pytest.fixture
def kafka_names(kafka_bootstrap):
    """A unique topic prefix and app id; their topics are deleted afterwards."""
    tag = uuid.uuid4().hex[:10]
    names = {"SERVICESCORE_TOPIC_PREFIX": f"t{tag}-", "SERVICESCORE_APP_ID": f"app{tag}"}
    yield names
    asyncio.run(delete_by_prefix(kafka_bootstrap, (f"t{tag}-", f"app{tag}-")))


async def delete_by_prefix(bootstrap: str, prefixes: tuple[str, ...]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefixes)]
    finally:
        await admin.close()
    if names:
        await delete_topics(bootstrap, names)


def assert_user_error(done: subprocess.CompletedProcess, *words: str) -> None:
    """Exit non-zero, one line on stderr naming the problem, no traceback."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("servicescore: ")
    assert all(word in done.stderr for word in words), done.stderr


def test_help_lists_every_command(cli):
    done = cli("--help")
    assert done.returncode == 0
    listed = {line.split()[0] for line in done.stdout.splitlines()
              if line.startswith("    ") and line.split()}
    assert set(COMMANDS) <= listed


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_command_has_help(cli, command):
    done = cli(command, "--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"usage: servicescore {command}")


@pytest.mark.parametrize("command", ["kpis", "tickets"])
@pytest.mark.parametrize("start", ["yesterday", "2026-13-01", "2026-11-01T25:00"])
def test_bad_from_value(cli, command, start):
    assert_user_error(cli(command, "--from", start, "--to", "2026-12-01"), repr(start))


@pytest.mark.parametrize("command", ["kpis", "tickets"])
def test_to_before_from(cli, command):
    done = cli(command, "--from", "2026-12-01", "--to", "2026-11-01", "--format", "json")
    assert_user_error(done, "--to", "--from")


def test_unreadable_roster_file(cli, tmp_path):
    missing = tmp_path / "nowhere.csv"
    assert_user_error(cli("roster", "import", str(missing)), str(missing))


def test_roster_with_a_bad_role_names_the_line(cli, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER_CSV + "E-3,王芳,manager,华东一组,true\n", encoding="utf-8")
    assert_user_error(cli("roster", "import", str(roster)), f"{roster}:4", "'manager'")


def test_bad_env_value_names_the_variable(cli):
    assert_user_error(cli("config", SERVICESCORE_PARTITIONS="abc"), "SERVICESCORE_PARTITIONS")


def test_unreachable_kafka_fails_fast(cli, kafka_names):
    # Bounded by the subprocess timeout, not by an assertion on the clock.
    done = cli("topics", "create", timeout=60, SERVICESCORE_KAFKA_BOOTSTRAP="127.0.0.1:1",
               **kafka_names)
    assert_user_error(done, "127.0.0.1:1")


def test_replay_names_the_bad_line(cli, tmp_path, kafka_names):
    lines = tmp_path / "events.jsonl"
    lines.write_text("\n{这不是 JSON\n", encoding="utf-8")  # line 1 blank, line 2 bad
    done = cli("replay", str(lines), **kafka_names)
    assert_user_error(done, f"{lines}:2")
    assert done.stdout.strip() == "published 0 event(s), skipped 1 bad line(s)"


def test_migrate_twice(cli):
    first, second = cli("migrate"), cli("migrate")
    assert (first.returncode, second.returncode) == (0, 0)
    assert first.stdout.startswith("applied 001_facts")
    assert second.stdout.strip() == "schema is up to date"


def test_topics_create_twice(cli, kafka_names):
    from servicescore.core.settings import load_settings
    from servicescore.kafka.client import Cluster
    from servicescore.kafka.topics import topic_plan

    total = len(topic_plan(Cluster.of(load_settings(app_id=kafka_names["SERVICESCORE_APP_ID"]))))
    first, second = cli("topics", "create", **kafka_names), cli("topics", "create", **kafka_names)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert first.stdout.startswith(f"created {total} topic(s), 0 already existed")
    assert second.stdout.strip() == f"created 0 topic(s), {total} already existed"


def test_roster_import_then_kpis_without_samples(cli, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER_CSV, encoding="utf-8")
    imported = cli("roster", "import", str(roster))
    assert (imported.returncode, imported.stderr) == (0, ""), imported.stderr
    assert imported.stdout.startswith("imported 2 engineer(s)")
    kpis = cli("kpis", "--from", "2026-11-01", "--to", "2026-12-01", "--format", "json")
    assert (kpis.returncode, kpis.stderr, json.loads(kpis.stdout)) == (0, "", [])


def test_simulate_writes_events_and_roster(cli, tmp_path):
    out = tmp_path / "traffic.jsonl"
    done = cli("simulate", "--start", "2026-11-01", "--days", "2", "--engineers", "3",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert records and all(set(r) == {"topic", "event"} for r in records)
    with open(tmp_path / "traffic.roster.csv", encoding="utf-8", newline="") as handle:
        roster = list(csv.DictReader(handle))
    assert len(roster) == 3 and list(roster[0]) == ["engineer_id", "name", "role", "team_id",
                                                     "active"]


def test_config_masks_the_dsn_password(cli):
    done = cli("config", SERVICESCORE_CLICKHOUSE_DSN="http://u:secret@h:8123/db",
               SERVICESCORE_API_TOKEN="tok-secret-2")
    shown = json.loads(done.stdout)
    assert done.returncode == 0 and "secret" not in done.stdout
    assert (shown["clickhouse_dsn"], shown["api_token"]) == ("http://u:***@h:8123/db", "***")


def window_of(*flags: str) -> tuple[int, int]:
    from servicescore.cli import build_parser
    from servicescore.cli.reads import window
    from servicescore.core.settings import load_settings

    return window(load_settings(timezone="Asia/Shanghai"), build_parser().parse_args(flags))


def test_a_window_bound_may_be_a_period_meaning_its_start():
    year = (parse_instant("2026-01-01T00:00+08:00", "UTC"),
            parse_instant("2027-01-01T00:00+08:00", "UTC"))
    assert window_of("kpis", "--from", "2026", "--to", "2027") == year
    assert window_of("tickets", "--from", "2026-Q4", "--to", "2026-12")[1] == parse_instant(
        "2026-12-01T00:00+08:00", "UTC")


@pytest.mark.parametrize(("period", "start", "end"), [
    ("2026", "2026-01-01", "2027-01-01"), ("2026-Q4", "2026-10-01", "2027-01-01"),
    ("2026-11", "2026-11-01", "2026-12-01"), ("2026-12", "2026-12-01", "2027-01-01")])
def test_period_is_its_whole_span_in_the_business_timezone(period, start, end):
    span = tuple(parse_instant(f"{day}T00:00+08:00", "UTC") for day in (start, end))
    assert window_of("kpis", "--period", period) == span
    assert window_of("tickets", "--period", period) == span


def test_kpis_for_a_period_through_the_command(cli):
    assert cli("migrate").returncode == 0  # a read runs no DDL: the schema comes first
    done = cli("kpis", "--period", "2026-11", "--format", "json")
    assert (done.returncode, done.stderr, json.loads(done.stdout)) == (0, "", [])


def test_a_period_in_full_width_digits_is_the_same_period():
    assert window_of("kpis", "--period", "２０２６-Q4") == window_of("kpis", "--period", "2026-Q4")
