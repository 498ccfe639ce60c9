"""`servicescore assess import`: people's assessments from CSV, idempotent by content, a bad file
refused whole with every bad row named (appraisal.md)."""

from __future__ import annotations

import json

import pytest

from appraisal.assessments import AssessmentsRefused, read_assessments

HEADER = "engineer_id,dimension,score,assessor_role,assessor_id,period,comment\n"
GOOD = HEADER + ("E001,compliance,92,supervisor,M-1,2026-11,工单规范\n"
                 "E001,review360,80,peer,E002,2026-11,\n"
                 "E002,attitude,75.5,customer,,,态度好\n")


def test_every_row_is_an_event_with_an_id_from_its_content():
    first = read_assessments(GOOD, "a.csv", now_ms=1)
    again = read_assessments(GOOD, "a.csv", now_ms=2)
    assert [e["event_id"] for e in first] == [e["event_id"] for e in again]
    assert len({e["event_id"] for e in first}) == 3
    assert first[0] | {"event_id": "x"} == {
        "event_id": "x", "occurred_at": 1, "source": "assess-import", "engineer_id": "E001",
        "dimension": "compliance", "score": 92.0, "assessor_role": "supervisor",
        "assessor_id": "M-1", "period": "2026-11", "comment": "工单规范"}
    assert "period" not in first[2] and "assessor_id" not in first[2]


def test_a_bad_file_is_refused_whole_naming_every_bad_row():
    bad = GOOD + ("E003,courage,90,supervisor,,2026-11,\n"
                  "E004,compliance,101,supervisor,,2026-11,\n"
                  "E005,compliance,abc,peer,,,\n"
                  "E006,compliance,80,boss,,2026-13,\n")
    with pytest.raises(AssessmentsRefused) as refused:
        read_assessments(bad, "b.csv", now_ms=1)
    message = str(refused.value)
    assert message.startswith("b.csv: 4 bad row(s), nothing imported: line 5: dimension:")
    for line in ("line 6: score:", "line 7: score: not a number", "line 8: "):
        assert line in message
    assert "line 2" not in message and "\n" not in message


def test_a_wrong_header_is_refused():
    with pytest.raises(AssessmentsRefused, match="the header must be engineer_id,dimension"):
        read_assessments("engineer,score\nE1,90\n", "c.csv", now_ms=1)


def test_importing_twice_counts_once_through_the_pipeline(pipeline_factory, tmp_path):
    p = pipeline_factory("assess")
    p.cli("topics", "create")
    p.cli("migrate")
    p.start("worker")
    p.start("sink")
    (tmp_path / "a.csv").write_text(GOOD, encoding="utf-8")
    for _ in range(2):
        done = p.cli("assess", "import", str(tmp_path / "a.csv"))
        assert done.stdout.startswith("published 3 assessment(s)")
    refused = p.cli("assess", "import", str(tmp_path / "missing.csv"), check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("servicescore: cannot read")
    p.wait_idle()
    rows = {r["engineer_id"]: r for r in json.loads(
        p.cli("kpis", "--period", "2026-11", "--format", "json").stdout)}
    assert (rows["E001"]["assessment_compliance"], rows["E001"]["assessment_compliance_count"],
            rows["E001"]["assessment_review360_count"]) == (92.0, 1, 1)
