"""Delivery does not change a KPI: windows are half-open on the credit time, held events take
effect when their opened arrives, duplicates count once, arrival order and batching do not
matter, bad messages are dead letters. Each ``kpis()`` is checked equal to the oracle's."""

from __future__ import annotations

import json
import random
from datetime import date

from schemas.kpis import FIELDS
from servicescore.dev.simulate import simulate
from servicescore.queries import live
from tests.contract.harness import NOW_MS
from tests.oracle import KPI_FIELDS
from tests.test_oracle import BAD_RECORDS, Events, at, ms

DAY = (ms(2, "00:00"), ms(3, "00:00"))  # [Monday 2, Tuesday 3)


def one_sample_of_each_family_at(ev: Events, engineer: str, when: str) -> None:
    ticket = f"T-{engineer}"
    ev.opened(ticket, at(1, "09:00"), customer=ticket, assignee_id=engineer)
    ev.response(ticket, when, engineer)
    ev.escalated(ticket, when, engineer)
    ev.onsite(ticket, when, engineer)
    ev.resolved(ticket, when, engineer)
    ev.survey(ticket, when, csat=4)
    ev.complaint(engineer, when)
    ev.assessment(engineer, when, "attitude", 90)


def test_windows_are_half_open_on_the_credit_time_of_every_family(product):
    ev = Events()
    one_sample_of_each_family_at(ev, "at-from", at(2, "00:00"))
    one_sample_of_each_family_at(ev, "before-to", "2026-11-02T23:59:59.999+08:00")
    one_sample_of_each_family_at(ev, "at-to", at(3, "00:00"))
    one_sample_of_each_family_at(ev, "before-from", "2026-11-01T23:59:59.999+08:00")
    k = product(ev.records).kpis(DAY)
    assert set(k) == {"at-from", "before-to"}
    counts = ("resolutions", "first_responses", "escalations", "onsite_visits", "surveys",
              "complaints", "assessment_attitude_count")
    assert {name: k["at-from"][name] for name in counts} == dict.fromkeys(counts, 1)


def test_held_events_take_effect_when_their_opened_arrives(product):
    ev = Events()
    ev.response("T1", at(2, "09:10"), "e1")
    ev.escalated("T1", at(2, "09:20"), "e1")
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.survey("T1", at(2, "11:00"), csat=5)
    p = product(ev.records)
    assert p.kpis() == {}
    assert [row["event_kind"] for row in live.held(p.storage, NOW_MS)] == [
        "first_response", "escalated", "resolved", "survey"]
    ev.opened("T1", at(2, "09:00"))
    p.send(ev.records[-1:])  # the opened comes last, in a later sink batch
    e1 = p.kpis()["e1"]
    assert (e1["resolutions"], e1["first_responses"], e1["escalations"], e1["surveys"]) == (
        1, 1, 1, 1)
    assert live.held(p.storage, NOW_MS) == []


def busy_week() -> Events:
    """Every rule at once: episodes, reopens, new tickets, escalations, surveys, held events."""
    ev = Events()
    for n in range(12):
        ticket, customer, engineer = f"T{n}", f"c{n % 3}", f"e{n % 4}"
        day = 2 + n % 5
        ev.opened(ticket, at(day, "09:00"), customer=customer, priority=f"P{1 + n % 4}",
                  assignee_id=f"e{(n + 1) % 4}")
        if n % 3:
            ev.response(ticket, at(day, "09:20"), engineer if n % 5 else "e9")
        if n % 4 == 1:
            ev.escalated(ticket, at(day, "10:00"), engineer)
        ev.resolved(ticket, at(day, "11:00"), engineer)
        if n % 2:
            ev.reopened(ticket, at(day + n % 9, "12:00"))
            ev.resolved(ticket, at(day + n % 9, "15:00"), "e3")
        ev.survey(ticket, at(day, "16:00"), csat=1 + n % 5, nps=n % 11)
    ev.complaint("e2", at(4, "10:00"))
    ev.assessment("e1", at(4, "10:00"), "review360", 70, role="peer")
    ev.resolved("late", at(5, "10:00"), "e1")  # never opened: stays held
    return ev


def test_any_arrival_order_duplicates_and_batches_give_the_same_kpis(product):
    records = busy_week().records
    baseline = product(records).kpis()
    for seed in range(4):
        rng = random.Random(seed)
        deliveries = records + rng.sample(records, len(records) // 3)
        rng.shuffle(deliveries)
        p = product()
        for start in range(0, len(deliveries), 7):  # a sink batch every seven messages
            p.send(deliveries[start:start + 7])
        assert p.kpis() == baseline, f"seed {seed}"


def test_a_simulated_week_shuffled_with_duplicates_equals_the_oracle(product):
    sim = simulate(date(2026, 11, 2), 7, 6, seed=5, timezone="Asia/Shanghai")
    rng = random.Random(5)
    deliveries = list(sim.records) + rng.sample(sim.records, len(sim.records) // 20)
    rng.shuffle(deliveries)
    roster = {e.engineer_id: e.team_id for e in sim.roster}
    p = product(deliveries, roster=roster)
    assert sum(row["resolutions"] for row in p.kpis().values()) > 100
    p.kpis((ms(4, "13:37"), ms(6, "08:00")))
    p.kpis(group="team")


def test_a_duplicate_event_id_counts_once_whatever_it_carries(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    first = ev.resolved("T1", at(2, "10:00"), "e1")
    ev.records.append(("ticket-resolved", {**first, "occurred_at": at(2, "12:00"),
                                           "engineer_id": "e2"}))  # same id: the first wins
    ev.records.append(("complaint-filed", json.dumps(ev.complaint("e1", at(3, "09:00")))))
    k = product(ev.records).kpis()
    assert set(k) == {"e1"}
    assert (k["e1"]["resolutions"], k["e1"]["aht_avg_s"], k["e1"]["complaints"]) == (
        1, 3600.0, 1)


def test_bad_messages_are_dead_letters_and_change_nothing(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.resolved("T1", at(2, "10:00"), "e1")
    p = product(ev.records + BAD_RECORDS)
    assert len(p.dead_letters) == len(BAD_RECORDS)
    assert all(letter["reason"] for letter in p.dead_letters)
    assert p.kpis()["e1"]["resolutions"] == 1


def test_every_kpi_field_of_the_contract_is_computed_by_both(product):
    ev = Events()
    ev.complaint("e1", at(2, "09:00"))
    e1 = product(ev.records).kpis()["e1"]
    assert set(FIELDS) == set(KPI_FIELDS)
    assert [name for name in e1 if name not in ("engineer_id", "team_id")] == list(FIELDS)
