"""The scheme file (appraisal/scheme.py, appraisal.md "Scheme file"): read exactly, refused with
the offending key named, and the shipped default inside the department standard's ranges."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from appraisal.scheme import (
    KPI_FIELDS,
    STANDARD_RANGES,
    SchemeError,
    category,
    category_weights,
    default_scheme,
    load_scheme,
    parse_scheme,
    samples_field,
)
from schemas.errors import ServicescoreError
from schemas.roster import ROLES

VALID = """\
version: "t1"
timezone: Asia/Shanghai
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
      - {kpi: frt_sla_rate, weight: 60, target: 0.95, floor: 0.60, min_samples: 10}
      - {kpi: repeat_rate_7d, weight: 40, target: 0.02, floor: 0.15, min_samples: 10}
"""


def written(tmp_path, text: str):
    path = tmp_path / "scheme.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_numbers_are_read_exactly_as_written(tmp_path):
    scheme = load_scheme(written(tmp_path, VALID))

    frt, repeat = scheme.role("field_engineer").kpis
    # 0.60 stays 0.60 (not the float 0.59999999999999997779...), ints become Decimals
    assert (frt.target, frt.floor, frt.weight) == (Decimal("0.95"), Decimal("0.60"), Decimal(60))
    assert str(frt.floor) == "0.60"
    assert (repeat.target, repeat.floor) == (Decimal("0.02"), Decimal("0.15"))
    assert [(g.name, g.min, g.bonus) for g in scheme.grades] == [
        ("excellent", 90, 1000), ("good", 80, 500), ("pass", 70, 0), ("fail", 0, -500)]
    assert (scheme.version, scheme.currency, scheme.grace_days) == ("t1", "CNY", 7)


def test_timezone_defaults_to_shanghai_and_min_samples_to_one():
    text = VALID.replace("timezone: Asia/Shanghai\n", "").replace(", min_samples: 10}", "}")

    scheme = parse_scheme(text)

    assert scheme.timezone == "Asia/Shanghai"
    assert [r.min_samples for r in scheme.role("field_engineer").kpis] == [1, 1]


def test_a_scheme_is_frozen():
    scheme = parse_scheme(VALID)

    with pytest.raises(ValidationError):
        scheme.grades[0].bonus = Decimal(5000)


def test_grade_is_the_first_whose_min_is_at_most_the_total():
    scheme = parse_scheme(VALID)

    assert scheme.grade_for(Decimal("90.00")).name == "excellent"
    assert scheme.grade_for(Decimal("89.99")).name == "good"
    assert scheme.grade_for(Decimal("70")).name == "pass"
    assert scheme.grade_for(Decimal("0")).name == "fail"


@pytest.mark.parametrize(("old", "new", "refusal"), [
    pytest.param("kpi: frt_sla_rate", "kpi: frt_sla_rat",
                 "roles.field_engineer.kpis[0] (frt_sla_rat).kpi: unknown KPI 'frt_sla_rat'",
                 id="unknown-kpi"),
    pytest.param("weight: 40", "weight: 30",
                 "roles.field_engineer.kpis: weights sum to 90, not 100", id="weights-not-100"),
    pytest.param("target: 0.02, floor: 0.15", "target: 0.15, floor: 0.15",
                 "roles.field_engineer.kpis[1] (repeat_rate_7d): target equals floor (0.15)",
                 id="target-equals-floor"),
    pytest.param("min: 70", "min: 85",
                 "grades: not descending by min: grades[2] (pass) has min 85, grades[1] has 80",
                 id="grades-not-descending"),
    pytest.param("min: 0,", "min: 10,",
                 "grades: the last grade's min must be 0 so every score has a grade "
                 "(fail has 10)", id="last-grade-not-0"),
    pytest.param("  field_engineer:\n", "  field_enginer:\n",
                 "roles.field_enginer: unknown role 'field_enginer' "
                 "(roles: field_engineer, support_specialist, service_rep)", id="unknown-role"),
    pytest.param("default_role: field_engineer", "default_role: service_rep",
                 "default_role: service_rep is not a role of this scheme "
                 "(roles: field_engineer)", id="default-role-not-in-scheme"),
    pytest.param("timezone: Asia/Shanghai", "timezone: Asia/Shanghia",
                 "timezone: unknown timezone 'Asia/Shanghia'", id="unknown-timezone"),
    pytest.param("floor: 0.60, min_samples: 10", "floor: 0.60, min_samples: -1",
                 "roles.field_engineer.kpis[0] (frt_sla_rate).min_samples: "
                 "Input should be greater than or equal to 0", id="negative-min-samples"),
    pytest.param("kpi: repeat_rate_7d", "kpi: frt_sla_rate",
                 "roles.field_engineer.kpis: frt_sla_rate is listed twice (kpis[0] and kpis[1])",
                 id="kpi-listed-twice"),
    pytest.param("grace_days: 7", "grace_days: 7\ngrace_day: 7",
                 "grace_day: unknown key", id="unknown-top-level-key"),
    pytest.param("weight: 60", "wieght: 60",
                 "roles.field_engineer.kpis[0] (frt_sla_rate).wieght: unknown key",
                 id="unknown-nested-key"),
    pytest.param("currency: CNY\n", "", "currency: missing", id="missing-key"),
    pytest.param("weight: 60", 'weight: "60"',
                 "roles.field_engineer.kpis[0] (frt_sla_rate).weight: must be a number, "
                 "got '60'", id="quoted-number"),
    pytest.param("target: 0.95", "target: .nan",
                 "roles.field_engineer.kpis[0] (frt_sla_rate).target: "
                 "Input should be a finite number", id="not-a-number"),
    pytest.param("weight: 40", "weight: 0", "roles.field_engineer.kpis[1] (repeat_rate_7d)."
                 "weight: Input should be greater than 0", id="zero-weight"),
    pytest.param('version: "t1"', "version: 2026.1",
                 "version: must be text (quote it), got 2026.1", id="unquoted-version"),
    pytest.param("name: excellent", "name: top",
                 "grades: no grade named excellent (the flags need it)", id="no-excellent"),
    pytest.param("name: good", "name: insufficient_data",
                 "grades: insufficient_data is reserved", id="reserved-grade"),
    pytest.param("currency: CNY", "currency: CNY\ncurrency: USD",
                 "not valid YAML: key 'currency' is given twice (line 4, column 1)",
                 id="key-given-twice"),
])
def test_a_bad_scheme_is_refused_in_one_line_naming_the_key(tmp_path, old, new, refusal):
    assert old in VALID
    path = written(tmp_path, VALID.replace(old, new, 1))

    with pytest.raises(SchemeError) as refused:
        load_scheme(path)

    message = str(refused.value)
    assert message.startswith(f"scheme {path}: {refusal}")
    assert "\n" not in message
    assert isinstance(refused.value, ServicescoreError)  # the CLI prints it without traceback


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(SchemeError, match=f"cannot read scheme {tmp_path / 'none.yaml'}: "):
        load_scheme(tmp_path / "none.yaml")


def test_a_role_the_scheme_lacks_is_a_user_error():
    with pytest.raises(SchemeError, match="scheme t1 has no role 'service_rep'"):
        parse_scheme(VALID).role("service_rep")


def test_default_scheme_covers_the_three_roles():
    scheme = default_scheme()

    assert set(scheme.roles) == set(ROLES)
    assert scheme.default_role in scheme.roles
    assert [g.name for g in scheme.grades] == ["excellent", "good", "pass", "fail"]


@pytest.mark.parametrize("role", ROLES)
def test_default_weights_are_inside_the_department_standard(role):
    weights = category_weights(default_scheme().role(role))

    for name, (low, high) in STANDARD_RANGES.items():
        assert low <= weights[name] <= high, (role, name, weights[name])
    assert sum(weights.values()) == 100


@pytest.mark.parametrize("role", ROLES)
def test_default_reverse_indicators_have_their_target_below_the_floor(role):
    reverse = {"repeat_rate_7d", "repeat_rate_30d", "complaint_rate", "aht_avg_s"}

    for rule in default_scheme().role(role).kpis:
        assert (rule.target < rule.floor) == (rule.kpi in reverse), rule.kpi


def test_every_kpi_has_a_category_and_a_sample_count():
    for kpi in KPI_FIELDS:
        assert category(kpi) in STANDARD_RANGES
        assert samples_field(kpi) in KPI_FIELDS


@pytest.mark.parametrize(("kpi", "field"), [
    ("frt_p90_s_bh", "first_responses"), ("aht_avg_s", "resolutions"),
    ("fcr_rate", "resolutions"), ("repeat_rate_30d", "resolutions"),
    ("complaint_rate", "resolutions"), ("csat_positive_rate", "surveys"),
    ("nps", "nps_responses"), ("onsite_on_time_rate", "onsite_visits"),
    ("assessment_review360", "assessment_review360_count"), ("resolutions", "resolutions"),
    ("complaints", "complaints"),
])
def test_sample_counts_are_those_of_appraisal_md(kpi, field):
    assert samples_field(kpi) == field


def test_a_scheme_round_trips_through_its_json():
    # The close may store the scheme beside the frozen results; Decimals travel as strings.
    scheme = default_scheme()

    assert type(scheme).model_validate_json(scheme.model_dump_json()) == scheme
