"""Scoring (appraisal/scorecard.py, appraisal.md "Scoring"): hand-worked examples, one per rule.

Every number below can be checked with pen and paper from SCHEME:
    field_engineer:     frt_sla_rate   weight 50, target 0.90, floor 0.50  (100 per 0.40)
                        repeat_rate_7d weight 30, target 0.05, floor 0.25  (reverse: 100 per -0.20)
                        assessment_compliance weight 20, target 100, floor 50  (100 per 50)
    support_specialist: frt_sla_rate 5 and fcr_rate 95, both target 0.95, floor 0.60 (sevenths)
    service_rep:        assessment_compliance weight 100, target 100, floor 0 (score = value)
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest

from appraisal.scheme import SchemeError, default_scheme, parse_scheme
from appraisal.scorecard import kpi_score, scorecard
from schemas.roster import ROLES
from servicescore.queries.kpis import empty_kpis

SCHEME = parse_scheme("""\
version: "t1"
currency: CNY
grace_days: 7
grades:
  - {name: excellent, label: 优秀, min: 90, bonus: 1000}
  - {name: good, label: 良好, min: 80, bonus: 500}
  - {name: pass, label: 合格, min: 70, bonus: 0}
  - {name: fail, label: 不合格, min: 0, bonus: -500}
default_role: field_engineer
roles:
  field_engineer:
    kpis:
      - {kpi: frt_sla_rate, weight: 50, target: 0.90, floor: 0.50, min_samples: 10}
      - {kpi: repeat_rate_7d, weight: 30, target: 0.05, floor: 0.25, min_samples: 10}
      - {kpi: assessment_compliance, weight: 20, target: 100, floor: 50, min_samples: 1}
  support_specialist:
    kpis:
      - {kpi: frt_sla_rate, weight: 5, target: 0.95, floor: 0.60, min_samples: 1}
      - {kpi: fcr_rate, weight: 95, target: 0.95, floor: 0.60, min_samples: 1}
  service_rep:
    kpis:
      - {kpi: assessment_compliance, weight: 100, target: 100, floor: 0, min_samples: 1}
""")


def row(**fields) -> dict:
    """A KPI row as `servicescore kpis --format json` gives it: every field, null or 0 if unset."""
    return {"engineer_id": "E1", "team_id": "T1", **empty_kpis(), **fields}


def field_engineer(frt=0.80, first_responses=20, repeat=0.15, resolutions=20, compliance=100.0,
                   compliance_count=1) -> dict:
    return row(frt_sla_rate=frt, first_responses=first_responses, repeat_rate_7d=repeat,
               resolutions=resolutions, assessment_compliance=compliance,
               assessment_compliance_count=compliance_count)


def lines(card) -> list[tuple]:
    return [(k.kpi, k.score, k.effective_weight, k.included, k.reason) for k in card.kpis]


# -- one KPI: clamp(100 × (value − floor) / (target − floor), 0, 100) -------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("0.80", 75),   # 100 × (0.80 − 0.50) / 0.40 = 75
    ("0.95", 100),  # 100 × 0.45 / 0.40 = 112.5, clamped to 100
    ("0.40", 0),    # 100 × (−0.10) / 0.40 = −25, clamped to 0
])
def test_kpi_score_higher_is_better(value, expected):
    assert kpi_score(Decimal(value), Decimal("0.90"), Decimal("0.50")) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("0.10", 75),   # 100 × (0.10 − 0.25) / (0.05 − 0.25) = 100 × −0.15 / −0.20 = 75
    ("0.01", 100),  # 100 × −0.24 / −0.20 = 120, clamped to 100
    ("0.30", 0),    # 100 × 0.05 / −0.20 = −25, clamped to 0
])
def test_kpi_score_reverse_indicator_has_target_below_floor(value, expected):
    assert kpi_score(Decimal(value), Decimal("0.05"), Decimal("0.25")) == expected


def test_kpi_score_is_exact():
    # 100 × (0.699 − 0.60) / 0.35 = 9.9 / 0.35 = 198/7, not a 28-digit approximation
    assert kpi_score(Decimal("0.699"), Decimal("0.95"), Decimal("0.60")) == Fraction(198, 7)


# -- the total, grade and bonus -----------------------------------------------------------

def test_every_kpi_included_weights_as_in_the_scheme():
    # frt 0.80 -> 75; repeat 0.15 -> 100 × −0.10 / −0.20 = 50; compliance 100 -> 100
    # total = (50 × 75 + 30 × 50 + 20 × 100) / 100 = (3750 + 1500 + 2000) / 100 = 72.50
    card = scorecard(field_engineer(), SCHEME, "field_engineer")

    assert (card.score, card.grade, card.grade_label, card.bonus) == (
        Decimal("72.50"), "pass", "合格", Decimal(0))
    assert lines(card) == [
        ("frt_sla_rate", Decimal("75.00"), Decimal("50.00"), True, None),
        ("repeat_rate_7d", Decimal("50.00"), Decimal("30.00"), True, None),
        ("assessment_compliance", Decimal("100.00"), Decimal("20.00"), True, None)]
    assert card.flags == ()


def test_a_null_kpi_is_excluded_and_its_weight_shared_out():
    # compliance null: its 20 shared over frt 50 and repeat 30 in proportion
    # total = (50 × 75 + 30 × 50) / 80 = 5250 / 80 = 65.625 -> 65.63 (half-up) -> fail
    # effective weights: 50 × 100 / 80 = 62.50, 30 × 100 / 80 = 37.50
    card = scorecard(field_engineer(compliance=None, compliance_count=0), SCHEME,
                     "field_engineer")

    assert (card.score, card.grade, card.bonus) == (Decimal("65.63"), "fail", Decimal(-500))
    assert lines(card) == [
        ("frt_sla_rate", Decimal("75.00"), Decimal("62.50"), True, None),
        ("repeat_rate_7d", Decimal("50.00"), Decimal("37.50"), True, None),
        ("assessment_compliance", None, Decimal("0.00"), False, "null")]


def test_a_kpi_below_min_samples_is_excluded_with_its_value_shown():
    # frt from 9 first responses, min_samples 10: out; 50 shared over repeat 30 and compliance 20
    # total = (30 × 50 + 20 × 100) / 50 = 3500 / 50 = 70.00 -> pass (min 70 is inclusive)
    card = scorecard(field_engineer(first_responses=9), SCHEME, "field_engineer")

    assert (card.score, card.grade) == (Decimal("70.00"), "pass")
    assert lines(card) == [
        ("frt_sla_rate", None, Decimal("0.00"), False, "below_min_samples"),
        ("repeat_rate_7d", Decimal("50.00"), Decimal("60.00"), True, None),
        ("assessment_compliance", Decimal("100.00"), Decimal("40.00"), True, None)]
    frt = card.kpis[0]
    assert (frt.value, frt.samples, frt.target, frt.floor, frt.weight) == (
        Decimal("0.8"), 9, Decimal("0.90"), Decimal("0.50"), Decimal(50))


def test_a_kpi_with_exactly_min_samples_is_included():
    card = scorecard(field_engineer(first_responses=10), SCHEME, "field_engineer")

    assert card.kpis[0].included
    assert card.score == Decimal("72.50")


def test_a_count_kpi_is_its_own_sample_count():
    # resolutions: value 0 is 0 samples, below min_samples 1; value 12 is 12 samples
    scheme = parse_scheme(SCHEME_WITH_RESOLUTIONS)

    idle = scorecard(row(resolutions=0), scheme, "field_engineer")
    busy = scorecard(row(resolutions=12), scheme, "field_engineer")

    assert (idle.kpis[0].samples, idle.kpis[0].reason, idle.grade) == (
        0, "below_min_samples", "insufficient_data")
    # 100 × (12 − 0) / (20 − 0) = 60 -> fail
    assert (busy.kpis[0].samples, busy.score, busy.grade) == (12, Decimal("60.00"), "fail")


SCHEME_WITH_RESOLUTIONS = """\
version: "t2"
currency: CNY
grace_days: 0
grades:
  - {name: excellent, label: 优秀, min: 90, bonus: 1000}
  - {name: fail, label: 不合格, min: 0, bonus: 0}
default_role: field_engineer
roles:
  field_engineer:
    kpis:
      - {kpi: resolutions, weight: 100, target: 20, floor: 0, min_samples: 1}
"""


# -- rounding: half-up to 2 decimals, the grade read from the rounded total -----------------

def test_a_total_of_exactly_89_995_rounds_to_90_and_is_excellent():
    card = scorecard(row(assessment_compliance=89.995, assessment_compliance_count=3), SCHEME,
                     "service_rep")

    assert (card.score, card.grade, card.bonus) == (Decimal("90.00"), "excellent", Decimal(1000))
    assert card.flags == ("excellent_award",)


def test_a_total_of_89_994999_rounds_to_89_99_and_is_good():
    card = scorecard(row(assessment_compliance=89.994999, assessment_compliance_count=3), SCHEME,
                     "service_rep")

    assert (card.score, card.grade, card.bonus) == (Decimal("89.99"), "good", Decimal(500))
    assert card.flags == ()


def test_a_total_of_89_995_from_repeating_decimals_is_still_excellent():
    # frt 0.699: 100 × 0.099 / 0.35 = 198/7 = 28.2857...; fcr 0.92635: 100 × 0.32635 / 0.35 =
    # 6527/70 = 93.2428...; total = (5 × 198/7 + 95 × 6527/70) / 100 = 629965/7000 = 89.995.
    # 28-digit Decimal division gives 89.99499999999999999999999999 here, hence exact fractions.
    card = scorecard(row(frt_sla_rate=0.699, first_responses=1, fcr_rate=0.92635, resolutions=1),
                     SCHEME, "support_specialist")

    assert (card.score, card.grade) == (Decimal("90.00"), "excellent")
    assert [k.score for k in card.kpis] == [Decimal("28.29"), Decimal("93.24")]


# -- no data, flags ----------------------------------------------------------------------

def test_no_included_kpi_is_insufficient_data_for_a_person_to_review():
    card = scorecard(field_engineer(frt=None, first_responses=0, repeat=0.10, resolutions=3,
                                    compliance=None, compliance_count=0),
                     SCHEME, "field_engineer", previous_grade="fail")

    assert (card.score, card.grade, card.grade_label, card.bonus) == (
        None, "insufficient_data", "数据不足", None)
    assert card.flags == ("needs_review",)
    assert [(k.reason, k.effective_weight) for k in card.kpis] == [
        ("null", 0), ("below_min_samples", 0), ("null", 0)]


@pytest.mark.parametrize(("previous", "flags"), [
    ("fail", ("consecutive_fail",)),  # two fails in a row: the dismissal review
    ("pass", ()),
    ("insufficient_data", ()),
    (None, ()),  # no previous closed period
])
def test_consecutive_fail_needs_the_previous_period_failed_too(previous, flags):
    # total 65.63, a fail (worked out in test_a_null_kpi_is_excluded_and_its_weight_shared_out)
    card = scorecard(field_engineer(compliance=None, compliance_count=0), SCHEME,
                     "field_engineer", previous_grade=previous)

    assert (card.grade, card.flags) == ("fail", flags)


def test_an_excellent_after_a_fail_is_only_an_award():
    card = scorecard(row(assessment_compliance=95.0, assessment_compliance_count=1), SCHEME,
                     "service_rep", previous_grade="fail")

    assert (card.grade, card.flags) == ("excellent", ("excellent_award",))


# -- output ------------------------------------------------------------------------------

def test_to_json_has_the_fields_of_appraisal_md_with_decimals_as_exact_strings():
    card = scorecard(field_engineer(first_responses=9), SCHEME, "field_engineer",
                     previous_grade="pass")

    out = json.loads(json.dumps(card.to_json()))  # plain JSON types only

    assert out == {
        "engineer_id": "E1", "role": "field_engineer", "score": "70.00", "grade": "pass",
        "grade_label": "合格", "bonus": "0", "flags": [],
        "kpis": [
            {"kpi": "frt_sla_rate", "value": "0.8", "samples": 9, "target": "0.90",
             "floor": "0.50", "weight": "50", "effective_weight": "0.00", "score": None,
             "included": False, "reason": "below_min_samples"},
            {"kpi": "repeat_rate_7d", "value": "0.15", "samples": 20, "target": "0.05",
             "floor": "0.25", "weight": "30", "effective_weight": "60.00", "score": "50.00",
             "included": True, "reason": None},
            {"kpi": "assessment_compliance", "value": "100.0", "samples": 1, "target": "100",
             "floor": "50", "weight": "20", "effective_weight": "40.00", "score": "100.00",
             "included": True, "reason": None}]}


def test_insufficient_data_has_null_score_and_bonus_in_json():
    out = scorecard(row(), SCHEME, "service_rep").to_json()

    assert (out["score"], out["bonus"], out["grade"], out["flags"]) == (
        None, None, "insufficient_data", ["needs_review"])


@pytest.mark.parametrize("role", ROLES)
def test_the_default_scheme_scores_every_role(role):
    card = scorecard(row(csat_avg=4.8, surveys=20), default_scheme(), role)

    assert card.grade == "excellent"  # the only KPI with data is at its target
    assert [k.kpi for k in card.kpis] == [r.kpi for r in default_scheme().role(role).kpis]


# -- input the caller must fix ---------------------------------------------------------

def test_a_role_the_scheme_lacks_is_refused():
    scheme = parse_scheme(SCHEME_WITH_RESOLUTIONS)

    with pytest.raises(SchemeError, match="scheme t2 has no role 'service_rep'"):
        scorecard(row(), scheme, "service_rep")


def test_a_row_without_a_kpi_field_is_a_bug_not_missing_data():
    incomplete = row()
    del incomplete["assessment_compliance"]

    with pytest.raises(KeyError, match="assessment_compliance"):
        scorecard(incomplete, SCHEME, "service_rep")
