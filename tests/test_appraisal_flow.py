"""The period close end to end, as a department runs it (real Kafka, `servicescore run` holding
the embedded ClickHouse, every command through its API): a simulated month is closed, its
sheets written, a late event arrives, the adjustments show it, and a supersede freezes it."""

from __future__ import annotations

import json
from datetime import date

from servicescore.dev.simulate import simulate, write_jsonl, write_roster_csv

TZ = "Asia/Shanghai"


def test_a_month_through_close_report_late_event_adjustments_and_supersede(pipeline_factory,
                                                                           tmp_path):
    sim = simulate(date(2026, 11, 3), 10, 8, seed=19, timezone=TZ)
    write_jsonl(sim.records, tmp_path / "month.jsonl")
    write_roster_csv(sim.roster, tmp_path / "roster.csv")
    p = pipeline_factory("appraisal")
    p.env["SERVICESCORE_API_TOKEN"] = "hr-token"
    p.cli("topics", "create")
    p.cli("roster", "import", str(tmp_path / "roster.csv"))
    p.start("run")
    p.cli("replay", str(tmp_path / "month.jsonl"))
    p.wait_idle()

    assert p.cli("close", "--period", "2026-11", "--early").stdout.startswith(
        "closed 2026-11: 8 engineer(s) frozen")
    frozen = p.json("appraisals", "--period", "2026-11")
    assert len(frozen) == 8 and {r["status"] for r in frozen} == {"frozen"}
    p.cli("report", "--period", "2026-11", "--out", str(tmp_path / "sheets"))
    pages = sorted(f.name for f in (tmp_path / "sheets").iterdir())
    assert len([f for f in pages if f.endswith(".html")]) >= 8 + 1  # a sheet each, the team

    scored = next(r for r in frozen if r["score"] is not None)
    late = [{"topic": "complaint-filed", "event": {
        "event_id": f"late-{n}", "occurred_at": "2026-11-10T10:00:00+08:00",
        "engineer_id": scored["engineer_id"], "severity": "major"}} for n in range(4)]
    (tmp_path / "late.jsonl").write_text("\n".join(json.dumps(x) for x in late))
    p.cli("replay", str(tmp_path / "late.jsonl"))
    p.wait_idle()

    assert p.json("appraisals", "--period", "2026-11") == frozen  # frozen rows never change
    adjusted = {a["engineer_id"]: a for a in p.json("adjustments", "--period", "2026-11")}
    # complaint_rate is scored for every role of the shipped scheme
    assert "complaint_rate" in {c["kpi"] for c in adjusted[scored["engineer_id"]]["changed"]}
    others = [a for e, a in adjusted.items() if e != scored["engineer_id"]]
    assert all(not a["changed"] for a in others)

    p.cli("close", "--period", "2026-11", "--early", "--supersede", "late complaints")
    both = p.json("appraisals", "--period", "2026-11", "--all")
    assert sorted(r["status"] for r in both) == ["frozen"] * 8 + ["superseded"] * 8
    now = {r["engineer_id"]: r for r in p.json("appraisals", "--period", "2026-11")}
    assert now[scored["engineer_id"]]["content_hash"] != scored["content_hash"]
    p.stop_all()
