"""What the read commands print, as a person and a spreadsheet meet it: the KPIs a manager
reads first in human units, the rest on request, CSV that is complete and safe, times in the
business timezone, an unknown engineer named as such; where the data folder is; what `run`
says when it starts.

The reads run as the real command in a process of its own. The data sits in this session's
embedded ClickHouse, which this process holds; so the command reaches it, as it reaches a
running service, through the HTTP API (served here on the test's storage)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from rich.cells import cell_len

from schemas.facts import FACT_TABLES
from schemas.kpis import FIELDS
from schemas.period import parse_instant
from servicescore.app import api
from servicescore.app.reader import LocalReader
from servicescore.app.service import bind_api
from servicescore.app.startup import COORDINATOR_LOGGER, FirstStart
from servicescore.cli.reads import MANAGER_FIELDS, TICKET_COLUMNS
from servicescore.core.metrics import Metrics
from servicescore.core.settings import load_settings
from servicescore.dev.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
TZ = "Asia/Shanghai"
RESOLVED = parse_instant("2026-06-15T10:00", TZ)
SNEAKY = "=HYPERLINK(\"http://evil\")"  # an engineer id a spreadsheet would run


def insert(storage, kind: str, **fact) -> None:
    spec = FACT_TABLES[kind]
    storage.insert(spec.table, [spec.row({**fact, "v": 1, "del": 0})], spec.columns)


def ticket(ticket_id: str, opened_at: int, status: str, owner: str) -> dict:
    return {"ticket_id": ticket_id, "customer_id": "C-1", "category": "printer",
            "priority": "P2", "channel": "phone", "opened_at": opened_at, "status": status,
            "episodes": 1, "episode_start": opened_at, "escalations": 0, "owner_id": owner}


def resolution(ticket_id: str, engineer: str, aht_s: float) -> dict:
    return {"ticket_id": ticket_id, "episode": 1, "engineer_id": engineer,
            "resolved_at": RESOLVED, "episode_start": RESOLVED - int(aht_s * 1000),
            "aht_s": aht_s, "aht_bh_s": aht_s, "escalated": False, "fcr": True,
            "reopened_7d": False, "reopened_30d": False, "customer_id": "C-1",
            "category": "printer", "priority": "P2"}


@pytest.fixture
def data(storage):
    """June 2026: E-1 resolved a ticket in 1h52m (first contact), an engineer whose id is a
    formula resolved another; an open ticket of E-2 since 09:00 on 15 June (Shanghai); a dead
    letter refused at 10:30 that day."""
    insert(storage, "ticket", **ticket("T-1", RESOLVED - 6_720_000, "resolved", "E-1"))
    insert(storage, "resolution", **resolution("T-1", "E-1", 6720.0))
    insert(storage, "ticket", **ticket("T-2", RESOLVED - 600_000, "resolved", SNEAKY))
    insert(storage, "resolution", **resolution("T-2", SNEAKY, 600.0))
    insert(storage, "ticket", **ticket("T-3", RESOLVED - 3_600_000, "open", "E-2"))
    insert(storage, "dead_letter", topic="survey-submitted", partition=0, offset=7,
           raw_base64="/w==", reason="not valid UTF-8", rejected_at=RESOLVED + 1_800_000,
           replayed_at=None, raw_bytes=1, raw_sha256="a" * 64, truncated=False)
    return storage


@contextmanager
def serving(storage, tmp_path):
    """The API on ``storage``, in a thread of its own, for the duration."""
    settings = load_settings(data_dir=tmp_path, timezone=TZ, api=f"127.0.0.1:{free_port()}")
    sock = bind_api(settings)
    loop = asyncio.new_event_loop()
    app = api.create_api(LocalReader(storage, settings), Metrics(), TZ)
    runner = loop.run_until_complete(api.serve(app, sock))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield settings.api
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@pytest.fixture
def cli(data, chdb_dsn, tmp_path):
    """cli(*args, columns=200) -> CompletedProcess: the real command on the data above."""
    with serving(data, tmp_path) as address:

        def run(*args: str, columns: int = 200) -> subprocess.CompletedProcess:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
            # The folder this process holds: the command asks the API instead.
            env.update({"SERVICESCORE_CLICKHOUSE_DSN": chdb_dsn, "SERVICESCORE_API": address,
                        "SERVICESCORE_TIMEZONE": TZ, "COLUMNS": str(columns)})
            return subprocess.run([sys.executable, "-m", "servicescore.cli", *args], cwd=ROOT,
                                  env=env, capture_output=True, text=True, timeout=120)

        yield run


def header_of(table: str) -> list[str]:
    """The column names of a table printed on one header line (after its title)."""
    return table.splitlines()[1].split()


def test_kpis_show_the_headline_kpis_in_human_units(cli):
    done = cli("kpis", "--period", "2026-06")
    assert (done.returncode, done.stderr) == (0, "")
    assert header_of(done.stdout) == ["engineer_id", "team_id", *MANAGER_FIELDS]
    e1 = next(line for line in done.stdout.splitlines() if line.startswith("E-1 "))
    assert "1h52m" in e1 and "100 %" in e1 and "6720" not in e1
    assert "--all" in done.stdout and "--fields" in done.stdout  # the way to the rest


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_kpis_fit_the_terminal(cli, columns):
    done = cli("kpis", "--period", "2026-06", "--all", columns=columns)
    assert done.returncode == 0, done.stderr
    assert max(cell_len(line) for line in done.stdout.splitlines()) <= columns


def test_kpis_all_shows_every_field(cli):
    done = cli("kpis", "--period", "2026-06", "--all", columns=2000)
    assert header_of(done.stdout) == ["engineer_id", "team_id", *FIELDS]
    assert "--all" not in done.stdout  # nothing left to ask for


def test_kpis_fields_choose_the_columns_in_every_format(cli):
    table = cli("kpis", "--period", "2026-06", "--fields", "aht_avg_s,fcr_rate")
    assert header_of(table.stdout) == ["engineer_id", "team_id", "aht_avg_s", "fcr_rate"]
    rows = json.loads(cli("kpis", "--period", "2026-06", "--fields", "aht_avg_s",
                          "--format", "json").stdout)
    assert {"engineer_id": "E-1", "team_id": None, "aht_avg_s": 6720.0} in rows


def test_kpis_fields_refuse_an_unknown_name_and_suggest_one(cli):
    done = cli("kpis", "--period", "2026-06", "--fields", "aht_avg")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "unknown KPI field 'aht_avg'" in done.stderr and "aht_avg_s" in done.stderr


def test_kpis_json_and_csv_stay_complete_and_exact(cli):
    rows = json.loads(cli("kpis", "--period", "2026-06", "--format", "json").stdout)
    assert all(list(row) == ["engineer_id", "team_id", *FIELDS] for row in rows)
    e1 = next(r for r in rows if r["engineer_id"] == "E-1")
    assert e1["aht_avg_s"] == 6720.0 and e1["fcr_rate"] == 1.0
    table = list(csv.reader(io.StringIO(cli("kpis", "--period", "2026-06", "--format",
                                            "csv").stdout)))
    assert table[0] == ["engineer_id", "team_id", *FIELDS]
    e1_csv = dict(zip(table[0], next(r for r in table if r[0] == "E-1"), strict=True))
    assert (e1_csv["aht_avg_s"], e1_csv["team_id"], e1_csv["csat_avg"]) == ("6720.0", "", "")


def test_csv_neutralises_a_formula_and_writes_booleans_one_way(cli):
    kpis = list(csv.reader(io.StringIO(cli("kpis", "--period", "2026-06", "--format",
                                           "csv").stdout)))
    assert "'" + SNEAKY in [row[0] for row in kpis]
    tickets = list(csv.DictReader(io.StringIO(cli("tickets", "--period", "2026-06",
                                                  "--format", "csv").stdout)))
    assert {t["first_contact"] for t in tickets} == {"true"}
    assert {t["repeat_7d"] for t in tickets} == {"false"}


def test_csv_has_its_header_when_nothing_matches(cli):
    kpis = cli("kpis", "--period", "2030-01", "--format", "csv")
    assert kpis.stdout.splitlines() == [",".join(["engineer_id", "team_id", *FIELDS])]
    tickets = cli("tickets", "--period", "2030-01", "--format", "csv")
    assert tickets.stdout.splitlines() == [",".join(TICKET_COLUMNS)]


def test_the_empty_tickets_header_is_the_drill_downs(cli):
    done = cli("tickets", "--period", "2026-06", "--format", "csv")
    assert done.stdout.splitlines()[0] == ",".join(TICKET_COLUMNS)


def test_an_unknown_engineer_says_so(cli):
    for command in ("kpis", "tickets"):
        done = cli(command, "--period", "2026-06", "--engineer", "E-404")
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.strip() == ("servicescore: unknown engineer 'E-404': no ticket, "
                                       "survey, complaint or assessment names them")


def test_a_known_engineer_without_samples_in_the_window_is_no_error(cli):
    done = cli("kpis", "--period", "2026-07", "--engineer", "E-1")
    assert (done.returncode, done.stderr) == (0, "")
    assert "(no KPI sample of E-1 in 2026-07)" in done.stdout
    quiet_owner = cli("kpis", "--period", "2026-06", "--engineer", "E-2", "--format", "json")
    assert (quiet_owner.returncode, json.loads(quiet_owner.stdout)) == (0, [])


def test_live_shows_times_in_the_business_timezone(cli):
    (row,) = json.loads(cli("live", "--format", "json").stdout)
    assert row["oldest_open_since"] == "2026-06-15T09:00:00+08:00"
    table = cli("live").stdout
    assert "2026-06-15 09:00:00" in table and TZ in table
    assert str(RESOLVED - 3_600_000) not in table


def test_dead_letters_show_times_in_the_business_timezone(cli):
    (letter,) = json.loads(cli("dlq", "list", "--format", "json").stdout)
    assert (letter["rejected_at"], letter["replayed_at"]) == ("2026-06-15T10:30:00+08:00", None)
    table = cli("dlq", "list").stdout
    assert "2026-06-15 10:30:00" in table and str(RESOLVED + 1_800_000) not in table


def test_the_data_folder_does_not_depend_on_the_current_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
    env.update({"XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")})
    shown = set()
    for where in (ROOT, tmp_path, Path("/")):
        done = subprocess.run([sys.executable, "-m", "servicescore.cli", "config"], cwd=where,
                              env=env, capture_output=True, text=True, timeout=60)
        shown.add(json.loads(done.stdout)["data_dir"])
    assert shown == {str(tmp_path / "xdg" / "servicescore")}
    del env["XDG_DATA_HOME"]
    done = subprocess.run([sys.executable, "-m", "servicescore.cli", "config"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout)["data_dir"] == str(
        tmp_path / "home" / ".local" / "share" / "servicescore")
    env["SERVICESCORE_DATA_DIR"] = str(tmp_path / "mine")
    done = subprocess.run([sys.executable, "-m", "servicescore.cli", "config"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout)["data_dir"] == str(tmp_path / "mine")


def test_run_says_what_it_started_and_when_it_caught_up(kafka_bootstrap, tmp_path):
    """Its output to a file: the API, the data folder and the broker once it serves, then
    "caught up" once the simulated days it found on its topics are processed; no escape code
    and no ERROR line (a first start's missing coordinator included)."""
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
    api_address = f"127.0.0.1:{free_port()}"
    env.update({"SERVICESCORE_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "SERVICESCORE_TOPIC_PREFIX": f"o{tag}-", "SERVICESCORE_APP_ID": f"app{tag}",
                "SERVICESCORE_DATA_DIR": str(tmp_path / "data"), "SERVICESCORE_API": api_address,
                "SERVICESCORE_PARTITIONS": "2"})
    simulated = subprocess.run([sys.executable, "-m", "servicescore.cli", "simulate", "--start",
                                "2026-06-01", "--days", "2", "--engineers", "3", "--to-kafka"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert simulated.returncode == 0, simulated.stderr
    events = int(simulated.stdout.split()[1])
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "servicescore.cli", "run"], cwd=ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while "caught up" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(60)
    text = log.read_text(errors="replace")
    lines = text.splitlines()
    assert f"  API          http://{api_address}" in "\n".join(lines)
    assert any(line.startswith(f"  data folder  {tmp_path / 'data'}") for line in lines)
    assert any(line.startswith(f"  Kafka        {kafka_bootstrap}") for line in lines)
    assert f"servicescore run: caught up: {events:,} event(s)" in text
    assert "\x1b" not in text and "ERROR" not in text and "Traceback" not in text


def coordinator_record(error: Exception) -> logging.LogRecord:
    """The line aiokafka logs, at ERROR, each time it finds no coordinator for its group."""
    return logging.LogRecord(COORDINATOR_LOGGER, logging.ERROR, __file__, 1,
                             "Group Coordinator Request failed: %s", (error,), None)


def test_a_new_brokers_missing_coordinator_is_not_an_error_at_first():
    from aiokafka.errors import GroupAuthorizationFailedError, GroupCoordinatorNotAvailableError

    now = [0.0]
    first_start = FirstStart(grace_s=120, clock=lambda: now[0])
    assert not first_start.filter(coordinator_record(GroupCoordinatorNotAvailableError()))
    # not a retriable one, nor the same after the first two minutes: those are real trouble
    assert first_start.filter(coordinator_record(GroupAuthorizationFailedError()))
    now[0] = 121.0
    assert first_start.filter(coordinator_record(GroupCoordinatorNotAvailableError()))
