"""Who a sample is credited to: surveys, assessments (review 360), teams; and the counts and
rates of the other families. Each test: events, the product's KPIs (equal to the oracle's on
every field, checked by ``kpis()``), then the number the rule is about.
All times are November 2026 in +08:00 (Mon 2 ... Mon 9)."""

from __future__ import annotations

from tests.oracle import OracleConfig
from tests.test_oracle import Events, at, ms


def test_survey_credit_resolver_then_first_responder_then_assignee_then_nobody(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"), customer="c1", assignee_id="a1")
    ev.response("T1", at(2, "09:10"), "r1")
    ev.resolved("T1", at(2, "10:00"), "s1")
    ev.survey("T1", at(2, "10:00"), csat=5)  # at the resolution's instant: the resolver
    ev.opened("T2", at(2, "09:00"), customer="c2", assignee_id="a2")
    ev.survey("T2", at(2, "09:30"), csat=4)  # before any resolution: the first responder,
    ev.response("T2", at(2, "09:40"), "r2")  # even one who answered after the survey
    ev.opened("T3", at(2, "09:00"), customer="c3", assignee_id="a3")
    ev.survey("T3", at(2, "09:30"), csat=2)  # no response: the assignee
    ev.opened("T4", at(2, "09:00"), customer="c4")
    ev.survey("T4", at(2, "09:30"), csat=1)  # nobody: no engineer's KPI
    k = product(ev.records).kpis()
    assert {e: k[e]["surveys"] for e in k} == {"s1": 1, "r1": 0, "r2": 1, "a3": 1}
    assert (k["s1"]["csat_avg"], k["r2"]["csat_avg"], k["a3"]["csat_avg"]) == (5.0, 4.0, 2.0)


def test_survey_credit_is_the_latest_resolution_at_or_before_it(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.reopened("T1", at(2, "11:00"))
    ev.survey("T1", at(2, "11:30"), csat=2, nps=3)  # e1's, though the ticket is open again
    ev.resolved("T1", at(2, "12:00"), "e2")
    ev.survey("T1", at(2, "12:30"), csat=5, nps=10)
    k = product(ev.records).kpis()
    assert (k["e1"]["csat_avg"], k["e1"]["nps"]) == (2.0, -100.0)
    assert (k["e2"]["csat_avg"], k["e2"]["nps"]) == (5.0, 100.0)


def test_review360_is_a_weighted_mean_of_role_means_renormalised(product):
    ev = Events()
    ev.assessment("e1", at(2, "09:00"), "review360", 80, role="supervisor")
    ev.assessment("e1", at(2, "09:00"), "review360", 90, role="supervisor")
    ev.assessment("e1", at(2, "09:00"), "review360", 70, role="peer")
    ev.assessment("e1", at(2, "09:00"), "review360", 10, role="self")  # weight 0
    ev.assessment("e2", at(2, "09:00"), "review360", 50, role="self")  # only weight 0: null
    ev.assessment("e1", at(2, "09:00"), "compliance", 60, role="peer")  # plain mean
    ev.assessment("e1", at(2, "09:00"), "compliance", 90, role="self")
    k = product(ev.records).kpis()
    assert abs(k["e1"]["assessment_review360"] - 55 / 0.7) < 1e-9  # (0.4*85 + 0.3*70) / 0.7
    assert (k["e1"]["assessment_review360_count"], k["e1"]["assessment_compliance"]) == (4, 75.0)
    assert (k["e2"]["assessment_review360"], k["e2"]["assessment_review360_count"]) == (None, 1)
    peers_only = OracleConfig(review_weights={"peer": 1.0})
    assert product(ev.records, config=peers_only).kpis()["e1"]["assessment_review360"] == 70.0


def test_an_assessment_with_a_period_counts_at_the_period_start(product):
    ev = Events()
    ev.assessment("e1", at(5, "10:00", month=12), "training", 80, period="2026-11")
    ev.assessment("e2", at(5, "10:00", month=12), "training", 70, period="2026-Q4")
    ev.assessment("e3", at(5, "10:00"), "training", 60)  # no period: its occurred_at
    p = product(ev.records)
    assert set(p.kpis((ms(1, "00:00"), ms(1, "00:00", month=12)))) == {"e1", "e3"}
    assert set(p.kpis((ms(1, "00:00", month=10), ms(1, "00:00")))) == {"e2"}


def test_team_kpis_pool_the_samples_of_the_roster_s_engineers(product):
    ev = Events()
    for ticket, engineer, start, end in [("T1", "e1", "09:00", "10:00"),
                                         ("T2", "e1", "11:00", "12:00"),
                                         ("T3", "e2", "09:00", "11:30"),
                                         ("T4", "e3", "09:00", "09:30"),
                                         ("T5", "e4", "09:00", "09:10")]:
        ev.opened(ticket, at(2, start), customer=ticket)
        ev.resolved(ticket, at(2, end), engineer)
    p = product(ev.records, roster={"e1": "tA", "e2": "tA", "e3": "tB"})
    teams = p.kpis(group="team")
    assert {t: teams[t]["aht_avg_s"] for t in teams} == {"tA": 5400.0, "tB": 1800.0, None: 600.0}
    assert {e: row["team_id"] for e, row in p.kpis().items()} == {
        "e1": "tA", "e2": "tA", "e3": "tB", "e4": None}


def test_escalations_onsite_visits_complaints_and_nps(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"), customer="c1", priority="P2")
    ev.escalated("T1", at(2, "09:30"), "e1")
    ev.onsite("T1", at(2, "15:00"), "e1")  # 6 h, within P2's 8 h
    ev.onsite("T1", at(2, "16:00"), "e2")  # not the first arrival
    ev.resolved("T1", at(2, "17:00"), "e1")
    ev.survey("T1", at(2, "18:00"), csat=3, nps=7)  # passive
    ev.opened("T2", at(2, "09:00"), customer="c2", priority="P1")
    ev.onsite("T2", at(2, "14:00"), "e1")  # 5 h, late for P1's 4 h
    ev.resolved("T2", at(2, "15:00"), "e1")
    ev.survey("T2", at(2, "16:00"), csat=5, nps=9)
    ev.complaint("e1", at(3, "09:00"), ticket_id="T1")
    ev.complaint("e3", at(3, "09:00"), ticket_id="never-opened")
    k = product(ev.records).kpis()
    e1 = k["e1"]
    assert (e1["escalations"], e1["onsite_visits"], e1["onsite_on_time_rate"]) == (1, 2, 0.5)
    assert (e1["nps"], e1["csat_positive_rate"], e1["complaint_rate"]) == (50.0, 0.5, 0.5)
    assert (k["e3"]["complaints"], k["e3"]["complaint_rate"]) == (1, None)
    assert "e2" not in k
