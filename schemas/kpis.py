"""The KPI registry: every public KPI field of kpis.md (version 1.1), once.

Each field has its unit, its direction, the field that counts its samples (appraisal.md
"Scoring": a KPI whose sample count is below ``min_samples`` is excluded) and the family of
samples it is computed from, with that family's sample view (sql/003_sample_views.sql, with the
SLA flags of sql/005). The KPI queries, the appraisal scheme and the tests read this table;
nothing else lists the fields::

    REGISTRY["frt_sla_rate"].samples    # "first_responses"
    REGISTRY["aht_sla_rate"].target     # "aht": its target is the priority's resolution target
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from schemas.events import Dimension, Priority

Unit = Literal["count", "seconds", "ratio", "csat", "score", "nps"]
Direction = Literal["higher_is_better", "lower_is_better", "neither"]
Family = Literal["resolutions", "first_responses", "onsite", "escalations", "surveys",
                 "complaints", "assessments"]
# The kinds of SLA target per priority (settings frt_targets_s, aht_targets_s, onsite_targets_s;
# the kpi column of ClickHouse's sla_targets table).
Target = Literal["frt", "aht", "onsite"]

DIMENSIONS: tuple[str, ...] = get_args(Dimension)
PRIORITIES: tuple[str, ...] = get_args(Priority)
TARGETS: tuple[str, ...] = get_args(Target)

# The closed range of each bounded unit (count and seconds are only >= 0).
UNIT_RANGES: dict[str, tuple[float, float]] = {
    "ratio": (0, 1), "csat": (1, 5), "score": (0, 100), "nps": (-100, 100),
}
# Each family is one aggregate over one sample view: one row per sample, with the engineer it
# is credited to, its team and its time ``at`` (Grafana reads the same views).
VIEWS: dict[str, str] = {
    "resolutions": "resolution_samples",
    "first_responses": "first_response_samples",
    "onsite": "onsite_samples",
    "escalations": "escalation_samples",
    "surveys": "survey_samples",
    "complaints": "complaint_samples",
    "assessments": "assessment_samples",
}

HIGHER: Direction = "higher_is_better"
LOWER: Direction = "lower_is_better"
NEITHER: Direction = "neither"


@dataclass(frozen=True)
class Kpi:
    name: str
    unit: Unit
    direction: Direction
    samples: str  # the field holding the number of samples the value comes from
    family: Family
    target: Target | None = None  # an SLA rate: the per-priority target it compares with

    @property
    def view(self) -> str:
        return VIEWS[self.family]


def _count(name: str, family: Family, direction: Direction = NEITHER) -> Kpi:
    """A count is its own sample count (appraisal.md)."""
    return Kpi(name, "count", direction, name, family)


def _durations(prefix: str, samples: str, family: Family, suffix: str = "") -> list[Kpi]:
    """Mean, median and 90th percentile of a duration; shorter is better."""
    return [Kpi(f"{prefix}_{stat}_s{suffix}", "seconds", LOWER, samples, family)
            for stat in ("avg", "p50", "p90")]


def _assessment(dimension: str) -> list[Kpi]:
    count = f"assessment_{dimension}_count"
    return [Kpi(f"assessment_{dimension}", "score", HIGHER, count, "assessments"),
            _count(count, "assessments")]


# In the order of the output fields of `servicescore kpis`.
_KPIS: tuple[Kpi, ...] = (
    _count("resolutions", "resolutions"),
    _count("first_responses", "first_responses"),
    *_durations("frt", "first_responses", "first_responses"),
    Kpi("frt_sla_rate", "ratio", HIGHER, "first_responses", "first_responses", "frt"),
    *_durations("frt", "first_responses", "first_responses", "_bh"),
    *_durations("aht", "resolutions", "resolutions"),
    Kpi("aht_sla_rate", "ratio", HIGHER, "resolutions", "resolutions", "aht"),
    *_durations("aht", "resolutions", "resolutions", "_bh"),
    Kpi("fcr_rate", "ratio", HIGHER, "resolutions", "resolutions"),
    Kpi("repeat_rate_7d", "ratio", LOWER, "resolutions", "resolutions"),
    Kpi("repeat_rate_30d", "ratio", LOWER, "resolutions", "resolutions"),
    _count("escalations", "escalations"),
    _count("onsite_visits", "onsite"),
    Kpi("onsite_arrival_avg_s", "seconds", LOWER, "onsite_visits", "onsite"),
    Kpi("onsite_arrival_avg_s_bh", "seconds", LOWER, "onsite_visits", "onsite"),
    Kpi("onsite_on_time_rate", "ratio", HIGHER, "onsite_visits", "onsite", "onsite"),
    _count("surveys", "surveys"),
    Kpi("csat_avg", "csat", HIGHER, "surveys", "surveys"),
    Kpi("csat_positive_rate", "ratio", HIGHER, "surveys", "surveys"),
    Kpi("nps", "nps", HIGHER, "nps_responses", "surveys"),
    _count("nps_responses", "surveys"),
    # A complaint is never good, unlike a resolution or an escalation count.
    _count("complaints", "complaints", LOWER),
    # complaints / resolutions: counted by the complaints family, over the resolutions.
    Kpi("complaint_rate", "ratio", LOWER, "resolutions", "complaints"),
    *(kpi for dimension in DIMENSIONS for kpi in _assessment(dimension)),
)

REGISTRY: dict[str, Kpi] = {kpi.name: kpi for kpi in _KPIS}
FIELDS: tuple[str, ...] = tuple(REGISTRY)
COUNTS: tuple[str, ...] = tuple(kpi.name for kpi in _KPIS if kpi.unit == "count")
