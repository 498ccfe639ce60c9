"""Resolutions: first-contact resolution, repeats, handling time and its SLA, on both clocks.

Each test: hand-made events, a window, the product's KPIs (checked equal to the oracle's on
every field by ``product(...).kpis()``), then the number the rule is about, worked by hand.
All times are November 2026 in +08:00: Mon 2, Fri 6, Sat 7, Sun 8, Mon 9.
"""

from __future__ import annotations

import datetime as dt

from tests.oracle import OracleConfig
from tests.test_oracle import Events, at

BUSINESS_CLOCK = OracleConfig(sla_clock="business")


def test_fcr_needs_episode_one_no_escalation_the_responder_and_no_reopen_in_7_days(product):
    ev = Events()
    ev.opened("A", at(2, "09:00"), customer="cA")  # ok: responder resolves
    ev.response("A", at(2, "09:05"), "eA")
    ev.resolved("A", at(2, "10:00"), "eA")
    ev.opened("B", at(2, "09:00"), customer="cB")  # ok: nobody responded
    ev.resolved("B", at(2, "10:00"), "eB")
    ev.opened("C", at(2, "09:00"), customer="cC")  # not: escalated in episode 1
    ev.escalated("C", at(2, "09:30"), "eC")
    ev.resolved("C", at(2, "10:00"), "eC")
    ev.opened("D", at(2, "09:00"), customer="cD")  # not: someone else responded first
    ev.response("D", at(2, "09:05"), "eX")
    ev.resolved("D", at(2, "10:00"), "eD")
    ev.opened("E", at(2, "09:00"), customer="cE")  # not: reopened exactly 7 days after
    ev.resolved("E", at(2, "10:00"), "eE")
    ev.reopened("E", at(9, "10:00"))
    k = product(ev.records).kpis()
    assert {e: k[e]["fcr_rate"] for e in ("eA", "eB", "eC", "eD", "eE")} == {
        "eA": 1.0, "eB": 1.0, "eC": 0.0, "eD": 0.0, "eE": 0.0}


def test_a_reopen_is_a_repeat_within_7_and_30_days_after_both_edges(product):
    ev = Events()
    for ticket, reopened in [("T7", at(9, "10:00")), ("T7+", at(9, "10:01")),
                             ("T30", at(2, "10:00", month=12)),
                             ("T30+", at(2, "10:01", month=12))]:
        ev.opened(ticket, at(2, "09:00"), customer=ticket)
        ev.resolved(ticket, at(2, "10:00"), f"e{ticket}")
        ev.reopened(ticket, reopened)
    k = product(ev.records).kpis()
    assert {e: (k[e]["repeat_rate_7d"], k[e]["repeat_rate_30d"])
            for e in ("eT7", "eT7+", "eT30", "eT30+")} == {
        "eT7": (1.0, 1.0), "eT7+": (0.0, 1.0), "eT30": (0.0, 1.0), "eT30+": (0.0, 0.0)}


def test_a_new_ticket_of_the_same_customer_and_category_is_a_repeat(product):
    ev = Events()
    for customer, later in [("c7", at(9, "10:00")), ("c7+", at(9, "10:01")),
                            ("c30", at(2, "10:00", month=12)),
                            ("c30+", at(2, "10:01", month=12)), ("c0", at(2, "10:00"))]:
        ev.opened(f"{customer}-1", at(2, "09:00"), customer=customer)
        ev.resolved(f"{customer}-1", at(2, "10:00"), f"e{customer}")
        ev.opened(f"{customer}-2", later, customer=customer)
    ev.opened("other-1", at(2, "09:00"), customer="cx", category="printer")
    ev.resolved("other-1", at(2, "10:00"), "ecx")
    ev.opened("other-2", at(3, "09:00"), customer="cx", category="network")  # not the same
    ev.opened("other-3", at(1, "09:00"), customer="cx", category="printer")  # before: not
    k = product(ev.records).kpis()
    assert {e: (k[e]["repeat_rate_7d"], k[e]["repeat_rate_30d"], k[e]["fcr_rate"])
            for e in ("ec7", "ec7+", "ec30", "ec30+", "ec0", "ecx")} == {
        "ec7": (1.0, 1.0, 1.0), "ec7+": (0.0, 1.0, 1.0), "ec30": (0.0, 1.0, 1.0),
        "ec30+": (0.0, 0.0, 1.0), "ec0": (1.0, 1.0, 1.0), "ecx": (0.0, 0.0, 1.0)}


def test_handling_time_runs_per_episode_from_the_opened_or_the_reopen(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.reopened("T1", at(2, "09:30"))  # while open: nothing
    ev.resolved("T1", at(2, "10:00"), "e1")  # episode 1: 1 h
    ev.resolved("T1", at(2, "10:30"), "e9")  # while resolved: nothing
    ev.reopened("T1", at(3, "09:00"))
    ev.reopened("T1", at(3, "10:00"))  # while open: nothing
    ev.resolved("T1", at(3, "11:00"), "e2")  # episode 2: 2 h from the first reopen
    k = product(ev.records).kpis()
    assert set(k) == {"e1", "e2"}
    assert (k["e1"]["aht_avg_s"], k["e2"]["aht_avg_s"]) == (3600.0, 7200.0)
    assert (k["e1"]["fcr_rate"], k["e2"]["fcr_rate"]) == (0.0, 0.0)  # reopened; episode 2


def test_resolution_sla_per_priority_on_either_clock(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"), customer="c1", priority="P1")
    ev.resolved("T1", at(2, "17:00"), "e1")  # 8 h: exactly the P1 target, within
    ev.opened("T2", at(2, "09:00"), customer="c2", priority="P1")
    ev.resolved("T2", at(2, "17:01"), "e1")  # late
    ev.opened("T3", at(6, "17:00"), customer="c3", priority="P1")  # Friday
    ev.resolved("T3", at(9, "16:00"), "e1")  # Monday: 71 h, 8 working hours
    assert product(ev.records).kpis()["e1"]["aht_sla_rate"] == 1 / 3
    business = product(ev.records, config=BUSINESS_CLOCK).kpis()["e1"]
    assert business["aht_sla_rate"] == 2 / 3  # T2 is 8 h 1 min on both clocks


def test_first_response_sla_on_either_clock_over_a_weekend(product):
    ev = Events()
    ev.opened("T1", at(6, "17:55"), priority="P1")  # Friday
    ev.response("T1", at(9, "09:05"), "e1")  # Monday: 63 h 10 min, 10 working minutes
    calendar = product(ev.records).kpis()["e1"]
    assert (calendar["frt_avg_s"], calendar["frt_avg_s_bh"]) == (227_400.0, 600.0)
    assert calendar["frt_sla_rate"] == 0.0
    assert product(ev.records, config=BUSINESS_CLOCK).kpis()["e1"]["frt_sla_rate"] == 1.0


def test_business_hours_skip_nights_weekends_and_holidays_and_count_makeup_days(product):
    ev = Events()
    ev.opened("T1", at(6, "17:00"), customer="c1")  # Friday
    ev.resolved("T1", at(10, "10:00"), "e1")  # Tuesday
    ev.opened("T2", at(2, "09:00"), customer="c2", priority="P1")
    ev.onsite("T2", at(2, "15:00"), "e1")
    plain = product(ev.records).kpis()["e1"]
    assert plain["aht_avg_s_bh"] == (1 + 9 + 1) * 3600.0  # Fri 1 h, Mon 9 h, Tue 1 h
    monday_off = OracleConfig(holidays=frozenset({dt.date(2026, 11, 9)}))
    assert product(ev.records, config=monday_off).kpis()["e1"]["aht_avg_s_bh"] == 2 * 3600.0
    saturday_on = OracleConfig(workdays=frozenset({dt.date(2026, 11, 7)}))  # 调休
    worked = product(ev.records, config=saturday_on).kpis()["e1"]
    assert worked["aht_avg_s_bh"] == (1 + 9 + 9 + 1) * 3600.0
    assert worked["onsite_arrival_avg_s_bh"] == 6 * 3600.0
    lunch = OracleConfig(work_hours={d: [("09:00", "12:00"), ("13:00", "18:00")]
                                     for d in range(5)})
    assert product(ev.records, config=lunch).kpis()["e1"]["onsite_arrival_avg_s_bh"] == 5 * 3600.0
