"""`servicescore run` (agents + sink + HTTP API in one process) holds the embedded data folder;
`kpis`, `tickets`, `live` and `dlq` still answer, through its HTTP API."""

from __future__ import annotations

import json
import urllib.request
from datetime import date

from servicescore.period import parse_instant
from servicescore.simulate import simulate, write_jsonl, write_roster_csv
from tests import oracle
from tests.test_pipeline import mismatches

TZ = "Asia/Shanghai"


def test_commands_read_through_the_running_service(pipeline_factory, tmp_path):
    sim = simulate(date(2026, 11, 2), 4, 6, seed=5, timezone=TZ)
    records = [*sim.records, ("survey-submitted", '{"event_id": "broken"')]
    write_jsonl(records, tmp_path / "events.jsonl")
    write_roster_csv(sim.roster, tmp_path / "roster.csv")
    p = pipeline_factory("service")
    p.env["SERVICESCORE_API_TOKEN"] = "s3cret"
    p.cli("topics", "create")
    p.cli("roster", "import", str(tmp_path / "roster.csv"))
    p.start("run")
    p.cli("replay", str(tmp_path / "events.jsonl"))
    p.wait_idle()

    lo, hi = "2026-11-02", "2026-11-09"
    want = oracle.compute_kpis(records, parse_instant(lo, TZ), parse_instant(hi, TZ))
    rows = p.json("kpis", "--from", lo, "--to", hi)
    assert not mismatches(want, rows, "engineer_id")

    engineer = max(want, key=lambda e: want[e]["resolutions"])
    tickets = p.json("tickets", "--from", lo, "--to", hi, "--engineer", engineer)
    assert len(tickets) == want[engineer]["resolutions"]
    assert {t["resolved_by"] for t in tickets} == {engineer}
    assert all(t["resolved_at"].endswith("+08:00") for t in tickets)

    letters = json.loads(p.cli("dlq", "list", "--format", "json").stdout)
    assert [(d["topic"], d["reason"][:12]) for d in letters] == [
        ("survey-submitted", "not valid UT")]

    wrong = p.cli("dlq", "replay", check=False,
                  env_extra={"SERVICESCORE_API_TOKEN": "guess"})
    assert wrong.returncode == 1 and "401" in wrong.stderr
    assert "republished 1 dead letter" in p.cli("dlq", "replay").stdout
    p.wait_idle()
    letters = json.loads(p.cli("dlq", "list", "--format", "json").stdout)
    assert len(letters) == 2  # the replayed one (marked) and its second refusal
    assert sum(1 for d in letters if d["replayed_at"] is not None) == 1

    backlog = p.json("live")
    assert sum(b["open_tickets"] for b in backlog) > 0

    api = f"http://{p.env['SERVICESCORE_API']}"
    health = json.load(urllib.request.urlopen(f"{api}/health"))
    assert health["status"] == "ok"
    metrics = urllib.request.urlopen(f"{api}/metrics").read().decode()
    assert 'servicescore_dead_letters_total{topic="survey-submitted"} 2.0' in metrics
