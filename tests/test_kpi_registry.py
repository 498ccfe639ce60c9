"""One definition per KPI. The registry (schemas/kpis.py) is the one list of KPI fields:
`servicescore kpis` gives exactly its fields, each sample-count field it names is a count it
gives, each view it names exists, and the independent oracle computes the same fields. The
configuration the formulas need (SLA targets and clock, review weights) is ClickHouse's, written
by sync_targets: the SQL of the sample views alone gives the SLA rates."""

from __future__ import annotations

from typing import get_args

import pytest

from schemas.events import Dimension
from schemas.facts import FACT_TABLES
from schemas.kpis import COUNTS, FIELDS, REGISTRY, UNIT_RANGES
from servicescore.core.settings import Settings
from servicescore.queries import kpis
from tests import oracle

BASE = 1_793_548_800_000  # 2026-11-02 00:00 +08:00
HOUR = 3_600_000


def store(storage, kind: str, **fact) -> None:
    spec = FACT_TABLES[kind]
    storage.insert(spec.table, [spec.row({**fact, "v": 1, "del": 0})], spec.columns)


def one_resolution(storage, ticket="T1", priority="P2", aht_s=3600.0, aht_bh_s=3600.0):
    store(storage, "resolution", ticket_id=ticket, episode=1, engineer_id="E1",
          resolved_at=BASE + HOUR, episode_start=BASE, aht_s=aht_s, aht_bh_s=aht_bh_s,
          escalated=False, fcr=True, reopened_7d=False, reopened_30d=False,
          customer_id=ticket, category="printer", priority=priority)


def one_ticket(storage, ticket: str, priority: str, frt_s: float, frt_bh_s: float) -> None:
    """A ticket first responded (and visited on site) by E1 after frt_s, frt_bh_s."""
    store(storage, "ticket", ticket_id=ticket, customer_id=ticket, category="printer",
          priority=priority, channel="phone", requires_onsite=True, opened_at=BASE,
          status="resolved", episodes=1, episode_start=BASE, escalations=0,
          first_response_at=BASE + HOUR, first_responder_id="E1", frt_s=frt_s,
          frt_bh_s=frt_bh_s, onsite_at=BASE + HOUR, onsite_engineer_id="E1", onsite_s=frt_s,
          onsite_bh_s=frt_bh_s)


def assessment(storage, event_id: str, role: str, score: float) -> None:
    store(storage, "assessment", event_id=event_id, engineer_id="E1", dimension="review360",
          score=score, assessor_role=role, effective_at=BASE)


def settings_targets(settings: Settings, **changes) -> dict:
    values = {name: getattr(settings, name) for name in (
        "frt_targets_s", "aht_targets_s", "onsite_targets_s", "sla_clock", "review_weights")}
    return {**values, **changes}


def e1(storage) -> dict:
    return kpis.compute(storage, 0, 10**15)[0]


def test_kpis_gives_exactly_the_registry_fields_in_its_order(storage):
    one_resolution(storage)
    [row] = kpis.compute(storage, 0, 10**15)
    assert tuple(row) == ("engineer_id", "team_id", *FIELDS)


def test_an_engineer_without_samples_of_a_kpi_gets_zero_counts_and_null_values(storage):
    one_resolution(storage)
    [row] = kpis.compute(storage, 0, 10**15)
    assert row["resolutions"] == 1
    assert all(row[f] == 0 for f in COUNTS if f != "resolutions")
    assert row["csat_avg"] is None and row["frt_sla_rate"] is None


def test_every_sample_count_field_is_a_count_kpi_gives():
    for kpi in REGISTRY.values():
        assert kpi.samples in COUNTS, kpi.name
        assert REGISTRY[kpi.samples].unit == "count"
        if kpi.unit == "count":
            assert kpi.samples == kpi.name  # a count is its own sample count


def test_sample_counts_follow_the_scoring_rule():
    """appraisal.md "Scoring": which samples each KPI's value comes from."""
    for name, kpi in REGISTRY.items():
        if name.startswith("frt_"):
            assert kpi.samples == "first_responses", name
        elif name.startswith(("aht_", "fcr_", "repeat_rate_")) or name == "complaint_rate":
            assert kpi.samples == "resolutions", name
        elif name.startswith("csat_"):
            assert kpi.samples == "surveys", name
        elif name == "nps":
            assert kpi.samples == "nps_responses"
        elif name.startswith("onsite_") and kpi.unit != "count":
            assert kpi.samples == "onsite_visits", name
        elif name.startswith("assessment_") and kpi.unit != "count":
            assert kpi.samples == f"{name}_count"


def test_each_kpi_names_a_sample_view_that_exists(storage):
    views = {r["name"] for r in storage.rows(
        "SELECT name FROM system.tables WHERE database = currentDatabase()")}
    assert {kpi.view for kpi in REGISTRY.values()} <= views


def test_dimensions_come_from_the_event_contract():
    assessed = {name.removeprefix("assessment_").removesuffix("_count")
                for name in FIELDS if name.startswith("assessment_")}
    assert assessed == set(get_args(Dimension))


def test_units_and_directions():
    for name, kpi in REGISTRY.items():
        if name.endswith("_rate"):
            assert kpi.unit == "ratio", name
        if kpi.unit in ("seconds",):
            assert kpi.direction == "lower_is_better", name
        if kpi.unit not in ("count", "seconds"):
            assert kpi.unit in UNIT_RANGES, name
    assert REGISTRY["repeat_rate_30d"].direction == "lower_is_better"  # reverse indicators
    assert REGISTRY["complaint_rate"].direction == "lower_is_better"
    assert REGISTRY["resolutions"].direction == "neither"


def test_the_oracle_computes_every_registry_field():
    assert set(oracle.KPI_FIELDS) == set(FIELDS)


# ------------------------------------------------------------------ targets in ClickHouse


def test_a_new_database_holds_the_default_settings(storage):
    assert kpis.current_targets(storage) == settings_targets(Settings(_env_file=None))


def test_synced_targets_are_read_back(storage):
    wanted = settings_targets(
        Settings(_env_file=None), sla_clock="business",
        aht_targets_s={"P1": 60.0, "P2": 120.0, "P3": 180.0, "P4": 240.0},
        review_weights={"peer": 1.0})
    kpis.sync_targets(storage, **wanted)
    got = kpis.current_targets(storage)
    assert got["aht_targets_s"] == wanted["aht_targets_s"]
    assert got["sla_clock"] == "business"
    # a role left out of the setting weighs nothing any more
    assert got["review_weights"] == {"peer": 1.0, "supervisor": 0.0, "customer": 0.0,
                                     "subordinate": 0.0, "self": 0.0}


def test_resolution_sla_follows_the_synced_targets_and_clock(storage):
    one_resolution(storage, "T1", "P1", aht_s=8 * 3600.0, aht_bh_s=3600.0)  # the target: in
    one_resolution(storage, "T2", "P1", aht_s=8 * 3600.0 + 1, aht_bh_s=3600.0)  # late
    one_resolution(storage, "T3", "P4", aht_s=100 * 3600.0, aht_bh_s=3600.0)  # P4 168 h: in
    assert e1(storage)["aht_sla_rate"] == 2 / 3
    defaults = settings_targets(Settings(_env_file=None))
    kpis.sync_targets(storage, **{**defaults, "sla_clock": "business"})
    assert e1(storage)["aht_sla_rate"] == 1.0  # one working hour each
    tight = {"P1": 1800.0, "P2": 1800.0, "P3": 1800.0, "P4": 1800.0}
    kpis.sync_targets(storage, **{**defaults, "sla_clock": "business", "aht_targets_s": tight})
    assert e1(storage)["aht_sla_rate"] == 0.0


def test_response_and_onsite_sla_follow_the_synced_targets(storage):
    one_ticket(storage, "T1", "P1", frt_s=900.0, frt_bh_s=0.0)  # P1: 900 s, 4 h on site
    one_ticket(storage, "T2", "P2", frt_s=5 * 3600.0, frt_bh_s=60.0)  # P2: 3600 s, 8 h
    row = e1(storage)
    assert (row["frt_sla_rate"], row["onsite_on_time_rate"]) == (0.5, 1.0)
    kpis.sync_targets(storage, **settings_targets(
        Settings(_env_file=None), frt_targets_s={"P1": 899, "P2": 5 * 3600, "P3": 1, "P4": 1},
        onsite_targets_s={"P1": 1, "P2": 1, "P3": 1, "P4": 1}))
    row = e1(storage)
    assert (row["frt_sla_rate"], row["onsite_on_time_rate"]) == (0.5, 0.0)


def test_the_sample_views_alone_give_the_sla_rates(storage):
    """What a Grafana panel reads: avg(within_target) over the view, no Python."""
    one_resolution(storage, "T1", "P1", aht_s=8 * 3600.0)
    one_resolution(storage, "T2", "P1", aht_s=9 * 3600.0)
    one_ticket(storage, "T3", "P3", frt_s=14400.0, frt_bh_s=0.0)
    row = e1(storage)
    for view, field in (("resolution_samples", "aht_sla_rate"),
                        ("first_response_samples", "frt_sla_rate"),
                        ("onsite_samples", "onsite_on_time_rate")):
        [sql] = storage.rows(f"SELECT avg(within_target) AS rate FROM {view}")
        assert sql["rate"] == row[field], field


def test_review360_uses_the_synced_weights(storage):
    assessment(storage, "A1", "supervisor", 90.0)
    assessment(storage, "A2", "peer", 60.0)
    assessment(storage, "A3", "peer", 80.0)
    assessment(storage, "A4", "self", 10.0)  # weight 0 by default
    assert e1(storage)["assessment_review360"] == pytest.approx((0.4 * 90 + 0.3 * 70) / 0.7)
    kpis.sync_targets(storage, **settings_targets(Settings(_env_file=None),
                                                  review_weights={"peer": 1.0}))
    row = e1(storage)
    assert row["assessment_review360"] == 70.0
    assert row["assessment_review360_count"] == 4  # every role's assessments count as samples
