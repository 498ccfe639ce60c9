"""Every user mistake is one line on stderr (`servicescore: ...`), a non-zero exit and no
traceback, whatever the command. The sweep enumerates the commands from the parser itself, so a
new command or option is covered without editing this file."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from servicescore.cli import build_parser
from servicescore.dev.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
BAD = "²"  # str.isdigit() is true, int() refuses it: the kind of value that used to crash
# Any text is a valid value there (a folder or a file name too: "²" is one, and the demo
# would make it its folder).
FREE_TEXT = {"--engineer", "--team", "--topic", "--out", "--data-dir"}


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, with a data folder of its own and a Kafka nobody listens on
    (nothing slow can happen)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
    environ.update({"SERVICESCORE_DATA_DIR": str(tmp_path / "data"),
                    "SERVICESCORE_KAFKA_BOOTSTRAP": "127.0.0.1:1", **env})
    return subprocess.run([sys.executable, "-m", "servicescore.cli", *args], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=120)


def assert_one_line(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("servicescore: ")
    assert not lines[0].startswith("servicescore: servicescore:"), "said twice"
    assert all(word in lines[0] for word in words), lines[0]


def commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def mistakes() -> list[list[str]]:
    """Per command: an unknown flag, and a bad value for each positional and each option that
    takes one (after valid choices for the positionals before it)."""
    cases = []
    for name, parser in commands().items():
        actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
        positionals = [a for a in actions if not a.option_strings]
        base = [name, *(a.choices[0] for a in positionals[:1] if a.choices)]
        cases.append([*base, "--no-such-flag"])
        if positionals:
            cases.append([name, BAD])
        for action in actions:
            flag = action.option_strings[0] if action.option_strings else None
            if flag and action.nargs != 0 and flag not in FREE_TEXT:
                cases.append([*base, flag, BAD])
    return cases


@pytest.mark.parametrize("args", mistakes(), ids=" ".join)
def test_every_command_refuses_a_mistake_in_one_line(tmp_path, args):
    assert_one_line(run(tmp_path, *args))


def test_the_sweep_covers_every_command():
    swept = {case[0] for case in mistakes()}
    assert swept == set(commands()) and {"kpis", "tickets", "dlq", "simulate"} <= swept


@pytest.mark.parametrize("command", ["kpis", "tickets"])
@pytest.mark.parametrize("bound", [BAD, "0000-01", "2025999", "1735689600000", "２０２５９９９"])
def test_bad_window_bound(tmp_path, command, bound):
    assert_one_line(run(tmp_path, command, "--from", bound, "--to", "2027"), repr(bound))


@pytest.mark.parametrize("args", [["--period", "2026", "--from", "2026"], ["--from", "2026"],
                                  ["--period", "2026-Q5"]])
def test_period_or_bounds(tmp_path, args):
    assert_one_line(run(tmp_path, "kpis", *args), "period")


def test_kafka_bootstrap_with_a_bad_port(tmp_path):
    done = run(tmp_path, "kafka", "start", SERVICESCORE_KAFKA_BOOTSTRAP="127.0.0.1:abc")
    assert_one_line(done, "SERVICESCORE_KAFKA_BOOTSTRAP", "127.0.0.1:abc")


def test_work_hours_not_json(tmp_path):
    done = run(tmp_path, "config", SERVICESCORE_WORK_HOURS="mon 09:00-18:00")
    assert_one_line(done, "SERVICESCORE_WORK_HOURS", "JSON")


@pytest.mark.parametrize("variable", ["SERVICESCORE_HOLIDAYS", "SERVICESCORE_WORKDAYS"])
@pytest.mark.parametrize("value", ["2026-10-01,2026-10-02", "2026-10-01, 2026-10-02",
                                   '["2026-10-01", "2026-10-02"]'])
def test_dates_as_people_write_them(tmp_path, variable, value):
    done = run(tmp_path, "config", **{variable: value})
    assert done.returncode == 0, done.stderr
    key = variable.removeprefix("SERVICESCORE_").lower()
    assert json.loads(done.stdout)[key] == ["2026-10-01", "2026-10-02"]


def test_a_single_holiday(tmp_path):
    done = run(tmp_path, "config", SERVICESCORE_HOLIDAYS="2026-10-01")
    assert (done.returncode, json.loads(done.stdout)["holidays"]) == (0, ["2026-10-01"])


def test_a_bad_holiday(tmp_path):
    assert_one_line(run(tmp_path, "config", SERVICESCORE_HOLIDAYS="2026-10-01,10/02"),
                    "SERVICESCORE_HOLIDAYS")


def test_missing_tls_ca_file(tmp_path):
    missing = tmp_path / "ca.pem"
    done = run(tmp_path, "topics", "create", SERVICESCORE_KAFKA_SECURITY_PROTOCOL="SSL",
               SERVICESCORE_KAFKA_SSL_CAFILE=str(missing))
    assert_one_line(done, "SERVICESCORE_KAFKA_SSL_CAFILE", str(missing))


def test_tls_ca_file_that_is_no_certificate(tmp_path):
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    done = run(tmp_path, "topics", "create", SERVICESCORE_KAFKA_SECURITY_PROTOCOL="SSL",
               SERVICESCORE_KAFKA_SSL_CAFILE=str(junk))
    assert_one_line(done, "SERVICESCORE_KAFKA_SSL_CAFILE")


@pytest.mark.parametrize("command", [["kpis", "--period", "2026-11"], ["migrate"],
                                     ["kafka", "start"]])
def test_data_folder_that_is_a_file(tmp_path, command):
    a_file = tmp_path / "data"
    a_file.write_text("")
    assert_one_line(run(tmp_path, *command, SERVICESCORE_DATA_DIR=str(a_file)),
                    "SERVICESCORE_DATA_DIR", str(a_file))


def test_data_folder_that_is_not_writable(tmp_path):
    # /sys refuses new folders to every user, root included (a chmod would not stop root)
    done = run(tmp_path, "tickets", "--period", "2026-11",
               SERVICESCORE_DATA_DIR="/sys/servicescore")
    assert_one_line(done, "SERVICESCORE_DATA_DIR", "/sys/servicescore")


def test_simulate_into_a_missing_folder(tmp_path):
    out = tmp_path / "nowhere" / "traffic.jsonl"
    done = run(tmp_path, "simulate", "--start", "2026-11-01", "--days", "1", "--engineers", "1",
               "--out", str(out))
    assert_one_line(done, str(out.parent))


@pytest.mark.parametrize("command", ["run", "sink"])
def test_api_port_already_taken(tmp_path, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = run(tmp_path, command, SERVICESCORE_API=address)
    assert_one_line(done, address, "in use")


def test_clickhouse_server_unreachable(tmp_path):
    done = run(tmp_path, "kpis", "--period", "2026",
               SERVICESCORE_CLICKHOUSE_DSN=f"http://127.0.0.1:{free_port()}/db")
    assert_one_line(done, "ClickHouse")


@pytest.mark.parametrize("command", ["run", "worker", "sink", "topics"])
def test_services_with_kafka_unreachable(tmp_path, command):
    args = [command, "create"] if command == "topics" else [command]
    done = run(tmp_path, *args, SERVICESCORE_API=f"127.0.0.1:{free_port()}")
    assert_one_line(done, "Kafka is not reachable at 127.0.0.1:1")


@pytest.mark.parametrize("address", ["0.0.0.0:8080", ":8080", "example.com:8080"])
def test_exposed_api_without_a_token(tmp_path, address):
    assert_one_line(run(tmp_path, "run", SERVICESCORE_API=address), "SERVICESCORE_API_TOKEN")


def test_output_into_a_closed_pipe_exits_quietly(tmp_path):
    """`servicescore tickets | head`: the reader left before the output came."""
    reader, writer = os.pipe()
    os.close(reader)  # no reader at all: the first write fails, deterministically
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
    environ.update(SERVICESCORE_DATA_DIR=str(tmp_path / "data"),
                   SERVICESCORE_KAFKA_BOOTSTRAP="127.0.0.1:1")
    subprocess.run([sys.executable, "-m", "servicescore.cli", "migrate"], cwd=ROOT, env=environ,
                   check=True, capture_output=True, timeout=120)
    try:
        done = subprocess.run([sys.executable, "-m", "servicescore.cli", "tickets", "--period",
                               "2026-11"], cwd=ROOT, env=environ, stdout=writer,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (141, "")


@pytest.mark.parametrize("limit", ["-1", "0", "10001", "1e3"])
def test_dlq_limit_out_of_range(tmp_path, limit):
    assert_one_line(run(tmp_path, "dlq", "list", "--limit", limit), "--limit", "10000")
