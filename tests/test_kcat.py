"""A producer we did not write: events published with Debian's kcat, one file per topic, with
the command line README shows a call-center integrator, are processed like our own: the KPIs
equal the test oracle's, the bad lines are dead-lettered with a reason.

kcat differs from our publisher where it matters: librdkafka's partitioner (CRC32, not Java's
murmur2) sends a key to another partition, and a topic's file arrives whole before the next one
(every resolution may be read before its opening)."""

from __future__ import annotations

import json
import random
import re
import shlex
import shutil
import subprocess
from datetime import date
from pathlib import Path

from schemas.period import parse_instant
from servicescore.dev.simulate import simulate
from tests import oracle
from tests.test_pipeline import mismatches

TZ = "Asia/Shanghai"
README = Path(__file__).resolve().parents[1] / "README.md"
WINDOWS = [("2026-11-01", "2026-12-01"), ("2026-11-03", "2026-11-04T12:00:00+08:00")]


def readme_kcat_line() -> list[str]:
    """The kcat command of README's "Publishing events with kcat", as words."""
    section = README.read_text(encoding="utf-8").split("### Publishing events with kcat")[1]
    (line,) = re.findall(r"^kcat -P .*$", section, re.M)
    return shlex.split(line)


def with_values(words: list[str], **values: str) -> list[str]:
    """``words`` with the value after each flag of ``values`` (b="...", t="...") replaced."""
    out = list(words)
    for flag, value in values.items():
        out[out.index(f"-{flag}") + 1] = value
    return out


def key_of(event) -> str:
    if isinstance(event, dict):
        return event.get("ticket_id") or event.get("engineer_id") or "none"
    return "none"


def test_events_published_with_kcat_give_the_oracles_kpis(pipeline_factory, tmp_path):
    kcat = shutil.which("kcat")
    assert kcat, "Debian's kcat is not installed: run `make ops-tools`"
    sim = simulate(date(2026, 11, 2), 3, 5, seed=13, timezone=TZ)
    rng = random.Random(13)
    bad = [("ticket-opened", '{"event_id": "cut-off", "occurred_at": '),
           ("survey-submitted", '{"event_id": "too-happy", "occurred_at": "2026-11-03T10:00:00Z", '
                                '"ticket_id": "TK-x", "csat": 9}')]
    deliveries = sim.records + rng.sample(sim.records, 20) + bad
    rng.shuffle(deliveries)
    assert {t for t, _ in sim.records} == set(oracle.REQUIRED)  # every topic, kcat for each

    p = pipeline_factory("kcat")
    p.cli("topics", "create")
    p.start("worker")
    p.start("sink")
    line = readme_kcat_line()
    assert line[:2] == ["kcat", "-P"] and "-K" in line and "-l" in line
    for topic in sorted({t for t, _ in deliveries}):
        path = tmp_path / f"{topic}.tsv"
        with path.open("w", encoding="utf-8", newline="\n") as out:
            for t, event in deliveries:
                if t == topic:
                    value = event if isinstance(event, str) else json.dumps(event,
                                                                            ensure_ascii=False)
                    out.write(f"{key_of(event)}\t{value}\n")
        command = with_values(line, b=p.env["SERVICESCORE_KAFKA_BOOTSTRAP"],
                              t=p.settings.topic(topic), l=str(path))
        done = subprocess.run([kcat, *command[1:]], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    p.wait_idle()
    p.stop_all()

    for start, end in WINDOWS:
        want = oracle.compute_kpis(deliveries, parse_instant(start, TZ), parse_instant(end, TZ))
        rows = p.json("kpis", "--from", start, "--to", end)
        assert want and not mismatches(want, rows, "engineer_id"), (start, end)
    letters = json.loads(p.cli("dlq", "list", "--format", "json").stdout)
    assert sorted((d["topic"], d["reason"].split(":")[0]) for d in letters) == [
        ("survey-submitted", "csat"), ("ticket-opened", "not valid UTF-8 JSON")]
