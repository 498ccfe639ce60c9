"""`make demo` and `servicescore demo`, run for real with a shortened month: the summary is what
`servicescore appraisals` says of the same folder afterwards, the sheets are written, and
Ctrl-C in the middle leaves nothing of what it started running."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servicescore.core.settings import load_settings
from servicescore.dev.demo import month_days, previous_month, settings_env

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "servicescore.cli"]
MONTH = "2026-06"
SUMMARY = ("engineer_id", "role", "score", "grade", "grade_label", "bonus")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
    env.update(extra)
    return env


def appraisals_of(folder: Path) -> list[dict]:
    """`servicescore appraisals` of the demo's folder, once the demo has ended."""
    done = subprocess.run([*CLI, "appraisals", "--period", MONTH, "--format", "json"], cwd=ROOT,
                          env=environment(SERVICESCORE_DATA_DIR=str(folder)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [{k: row[k] for k in SUMMARY} for row in json.loads(done.stdout)]


def demo(folder: Path, *flags: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "demo", "--month", MONTH, "--days", "4", "--engineers", "6",
                           "--data-dir", str(folder), *flags], cwd=ROOT,
                          env=environment(**env), capture_output=True, text=True, timeout=900)


def test_the_json_summary_is_what_appraisals_says(kafka_bootstrap, tmp_path):
    folder = tmp_path / "demo"
    done = demo(folder, "--format", "json", SERVICESCORE_KAFKA_BOOTSTRAP=kafka_bootstrap)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert (summary["period"], summary["days"], summary["engineers"]) == (MONTH, 4, 6)
    assert summary["events"] > 0 and len(summary["appraisals"]) == 6
    assert summary["appraisals"] == appraisals_of(folder)
    report = Path(summary["report"])
    assert report == folder / "report" / "index.html" and report.is_file()
    assert summary["report_url"] == report.as_uri()
    assert "processed" in done.stderr and "stopped: pipeline" in done.stderr  # progress


def make_demo(folder: Path, **env: str) -> subprocess.CompletedProcess:
    """`make demo`, the README's first command, with a shortened month. The virtualenv and the
    broker's jars are this session's (``-o``: not remade here; `make test` made them)."""
    bin_dir = Path(sys.executable).parent
    flags = (f"--month {MONTH} --days 4 --engineers 6 "
             f"--data-dir {shlex.quote(str(folder))}")
    return subprocess.run(["make", "-s", f"BIN={bin_dir}", "-o", f"{bin_dir}/.installed",
                           "-o", ".cache/kafka/lib/.fetched", "demo", f"DEMO_FLAGS={flags}"],
                          cwd=ROOT, env=environment(**env), capture_output=True, text=True,
                          timeout=900)


def test_make_demo_prints_what_appraisals_says(kafka_bootstrap, tmp_path):
    folder = tmp_path / "demo"
    done = make_demo(folder, SERVICESCORE_KAFKA_BOOTSTRAP=kafka_bootstrap, COLUMNS="120")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(n for n, line in enumerate(lines) if line.split() == list(SUMMARY))
    rows = []
    for line in lines[header + 2:]:  # after the header's rule, until the totals
        if "engineer(s):" in line:
            break
        engineer, role, score, grade, label, bonus = line.split()
        rows.append(dict(zip(SUMMARY, (engineer, role, score, grade, label, bonus),
                             strict=True)))
    assert rows and rows == appraisals_of(folder)
    assert f"Open the appraisal sheets: {(folder / 'report' / 'index.html').as_uri()}" in lines
    assert f"SERVICESCORE_DATA_DIR={folder} servicescore kpis --period {MONTH}" in done.stdout
    assert "processed" in done.stdout and "\x1b" not in done.stdout  # a file: plain lines


def processes_mentioning(text: str) -> list[str]:
    """Live processes whose command line or environment names ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            blob = cmdline + b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            command = cmdline.replace(b"\0", b" ")[:200].decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def test_ctrl_c_stops_everything_the_demo_started(tmp_path):
    """Its own broker (no SERVICESCORE_KAFKA_BOOTSTRAP) and its pipeline, interrupted while
    a month far too big to be done by then is on its way."""
    folder = tmp_path / "demo"
    process = subprocess.Popen([*CLI, "demo", "--month", MONTH, "--engineers", "100",
                                "--data-dir", str(folder)], cwd=ROOT, env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said = []
    try:
        for line in process.stdout:
            said.append(line)
            if "pipeline: servicescore run" in line:
                break
        assert processes_mentioning(str(folder)), "the broker and the pipeline run"
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    said.append(rest)
    assert process.returncode == 130, "".join(said)
    assert "stopped: pipeline, Kafka" in rest
    deadline = time.monotonic() + 10  # a process the demo ended may take a moment to go
    while processes_mentioning(str(folder)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(folder)) == []


def test_a_folder_with_other_files_is_refused_and_left_alone(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    done = demo(folder, SERVICESCORE_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert "holds other files (notes.txt)" in done.stderr
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_one_demo_at_a_time_in_a_folder(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    with (folder / ".demo.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = demo(folder, SERVICESCORE_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert done.returncode == 1
    assert done.stderr.strip() == f"servicescore: another demo is running in {folder}"


@pytest.mark.parametrize(("today", "month"), [("2026-11-23", "2026-10"),
                                              ("2027-01-01", "2026-12")])
def test_the_default_month_is_the_last_whole_one(today, month):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    now = datetime.fromisoformat(f"{today}T00:30").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert previous_month("Asia/Shanghai", now) == month
    first, days = month_days(month, "Asia/Shanghai")
    assert (first.isoformat()[:7], days) == (month, 31)


def test_the_pipeline_gets_the_demos_settings_through_its_environment(monkeypatch, tmp_path):
    """The service runs as a process of its own: every setting the demo gives it, secrets and
    structured values included, reaches it as given."""
    chosen = load_settings(data_dir=tmp_path, api_token="t0k", timezone="Europe/Berlin",
                           holidays="2026-10-01,2026-10-02", sla_clock="business",
                           frt_targets_s='{"P1": 60, "P2": 600, "P3": 6000, "P4": 60000}',
                           topic_prefix="servicescore-demo-1-", partitions=3)
    for name in list(os.environ):
        if name.startswith("SERVICESCORE_"):
            monkeypatch.delenv(name)
    for name, value in settings_env(chosen).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env of the repository's
    assert load_settings() == chosen
