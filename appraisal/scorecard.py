"""One engineer's scorecard for one period (appraisal.md "Scoring"): pure functions, no I/O.

    card = scorecard(row, default_scheme(), "field_engineer", previous_grade="fail")
    card.score, card.grade, card.bonus, card.flags     # Decimal("72.50"), "pass", Decimal(0), ()
    card.to_json()                                     # what the close freezes, plain JSON types

``row`` is one engineer's object of ``servicescore kpis --format json``: ``engineer_id`` and
every KPI field with its count fields.

Arithmetic is exact. Inputs become ``Decimal`` (a float KPI value through its shortest text,
``0.85`` not ``0.84999...``), and the sums and quotients run on ``fractions.Fraction`` made from
those Decimals: a KPI score like 100 × 0.3 / 0.35 is a repeating decimal, and a total that is
exactly 89.995 must round up to excellent, not fall to good through a truncated 28th digit.
Only outputs are rounded, half-up to 2 decimals: each KPI's score and effective weight for the
sheet, and the total, from which the grade is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from appraisal.scheme import EXCELLENT, FAIL, INSUFFICIENT, KpiRule, Scheme

INSUFFICIENT_LABEL = "数据不足"
# Flags, in the order a scorecard lists them.
CONSECUTIVE_FAIL = "consecutive_fail"  # a second fail in a row: the standard's dismissal review
EXCELLENT_AWARD = "excellent_award"
NEEDS_REVIEW = "needs_review"  # no KPI could be scored: a person decides
# Why a KPI was left out of the total.
NULL, BELOW_MIN_SAMPLES = "null", "below_min_samples"

_HUNDRED = Fraction(100)


@dataclass(frozen=True)
class KpiScore:
    """One line of the scorecard. An excluded KPI has score None, effective_weight 0 and the
    reason (``null`` or ``below_min_samples``); an included one has reason None."""

    kpi: str
    value: Decimal | None
    samples: int
    target: Decimal
    floor: Decimal
    weight: Decimal  # as in the scheme
    effective_weight: Decimal  # after the excluded KPIs' weight is shared out; 2 decimals
    score: Decimal | None  # 0..100, 2 decimals
    included: bool
    reason: str | None

    def to_json(self) -> dict:
        return {"kpi": self.kpi, "value": _text(self.value), "samples": self.samples,
                "target": _text(self.target), "floor": _text(self.floor),
                "weight": _text(self.weight), "effective_weight": _text(self.effective_weight),
                "score": _text(self.score), "included": self.included, "reason": self.reason}


@dataclass(frozen=True)
class Scorecard:
    """An engineer's appraisal for one period, before the close adds period, scheme version,
    close time and content hash. ``score`` and ``bonus`` are None for ``insufficient_data``."""

    engineer_id: str
    role: str
    score: Decimal | None  # 0..100, 2 decimals
    grade: str
    grade_label: str
    bonus: Decimal | None  # in the scheme's currency
    flags: tuple[str, ...]
    kpis: tuple[KpiScore, ...]  # in the scheme's order

    def to_json(self) -> dict:
        """Plain JSON types: Decimals as strings of their exact digits (``"89.99"``, ``"0.60"``)
        so no reader turns a score or a bonus into a binary float; counts as integers."""
        return {"engineer_id": self.engineer_id, "role": self.role, "score": _text(self.score),
                "grade": self.grade, "grade_label": self.grade_label,
                "bonus": _text(self.bonus), "flags": list(self.flags),
                "kpis": [line.to_json() for line in self.kpis]}


def kpi_score(value: Decimal, target: Decimal, floor: Decimal) -> Fraction:
    """``clamp(100 × (value − floor) / (target − floor), 0, 100)``, exactly. One formula for
    both directions: a reverse indicator has target < floor, so lower values score higher."""
    raw = _HUNDRED * (Fraction(value) - Fraction(floor)) / (Fraction(target) - Fraction(floor))
    return min(max(raw, Fraction(0)), _HUNDRED)


def weighted_total(weighted_scores: Iterable[tuple[Decimal, Fraction]]) -> Decimal:
    """``Σ weight × score / Σ weight`` over (weight, score) pairs, rounded half-up to 2 decimals;
    weights need not sum to 100, which is how excluded KPIs' weight is shared out."""
    pairs = [(Fraction(w), s) for w, s in weighted_scores]
    return half_up(sum(w * s for w, s in pairs) / sum(w for w, _ in pairs))


def half_up(amount: Fraction) -> Decimal:
    """Rounded to 2 decimals, halves away from zero (89.995 -> 90.00)."""
    cents = math.floor(abs(amount) * 100 + Fraction(1, 2))
    return Decimal(cents if amount >= 0 else -cents).scaleb(-2)


def exclusion(value: Decimal | None, samples: int, rule: KpiRule) -> str | None:
    """Why a KPI is left out of the total, or None when it counts."""
    if value is None:
        return NULL
    if samples < rule.min_samples:
        return BELOW_MIN_SAMPLES
    return None


def flags(grade: str, previous_grade: str | None) -> tuple[str, ...]:
    """The flags of a grade, given the grade of the previous closed period of the same kind
    (month after month, quarter after quarter), or None when there is none."""
    raised = []
    if grade == FAIL and previous_grade == FAIL:
        raised.append(CONSECUTIVE_FAIL)
    if grade == EXCELLENT:
        raised.append(EXCELLENT_AWARD)
    if grade == INSUFFICIENT:
        raised.append(NEEDS_REVIEW)
    return tuple(raised)


def scorecard(row: Mapping[str, object], scheme: Scheme, role: str,
              previous_grade: str | None = None) -> Scorecard:
    """The scorecard of the engineer in ``row`` under ``scheme`` for ``role`` (the roster's
    role, else ``scheme.default_role``: the caller decides). ``previous_grade`` is the grade of
    the previous closed period of the same kind, for ``consecutive_fail``."""
    readings = [_reading(row, rule) for rule in scheme.role(role).kpis]
    included = [(r.rule.weight, r.score) for r in readings if r.score is not None]
    shared = sum((Fraction(weight) for weight, _ in included), Fraction(0))
    lines = tuple(_line(r, shared) for r in readings)
    engineer_id = str(_field(row, "engineer_id"))
    if not included:
        return Scorecard(engineer_id, role, None, INSUFFICIENT, INSUFFICIENT_LABEL, None,
                         flags(INSUFFICIENT, previous_grade), lines)
    total = weighted_total(included)
    grade = scheme.grade_for(total)
    return Scorecard(engineer_id, role, total, grade.name, grade.label, grade.bonus,
                     flags(grade.name, previous_grade), lines)


class _Reading(NamedTuple):
    rule: KpiRule
    value: Decimal | None
    samples: int
    score: Fraction | None  # exact; None when excluded


def _reading(row: Mapping[str, object], rule: KpiRule) -> _Reading:
    value = _decimal(rule.kpi, _field(row, rule.kpi))
    samples = _count(rule.samples_field, _field(row, rule.samples_field))
    if value is None or exclusion(value, samples, rule) is not None:
        return _Reading(rule, value, samples, None)
    return _Reading(rule, value, samples, kpi_score(value, rule.target, rule.floor))


def _line(reading: _Reading, shared: Fraction) -> KpiScore:
    rule, value, samples, score = reading
    if score is None:
        return KpiScore(rule.kpi, value, samples, rule.target, rule.floor, rule.weight,
                        Decimal("0.00"), None, False, exclusion(value, samples, rule))
    # The scheme's weights sum to 100, so sharing out the excluded weight in proportion gives
    # each included KPI weight × 100 / (the included weights).
    effective = half_up(Fraction(rule.weight) * _HUNDRED / shared)
    return KpiScore(rule.kpi, value, samples, rule.target, rule.floor, rule.weight,
                    effective, half_up(score), True, None)


def _field(row: Mapping[str, object], name: str) -> object:
    # A KPI row has every field (null when it has no samples): a missing one is a bug upstream,
    # not an engineer without data, and must not quietly move weight elsewhere.
    if name not in row:
        raise KeyError(f"the KPI row of {row.get('engineer_id')!r} has no field {name!r}")
    return row[name]


def _count(name: str, count: object) -> int:
    if count is None:
        return 0
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"sample count {name} is {count!r}, not an integer")
    return count


def _decimal(kpi: str, value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"KPI {kpi} is {value!r}, not a number")
    # A float through its shortest text (0.85, not 0.84999999999999997779...).
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not exact.is_finite():
        raise ValueError(f"KPI {kpi} is {value!r}, not a finite number")
    return exact


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else format(amount, "f")
