"""Hand-made cases for the test oracle: every expected number can be checked by hand.

All times are November 2026 in Asia/Shanghai (+08:00): Mon 2, Fri 6, Sat 7, Sun 8, Mon 9.
The default working calendar is Monday-Friday 09:00-18:00.
"""

import datetime as dt
import json
import random

import pytest

try:
    from tests.oracle import (
        KPI_FIELDS,
        OracleConfig,
        compute_kpis,
        is_valid,
        parse_occurred_at,
        percentile,
        period_start_ms,
        working_seconds,
    )
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from oracle import (
        KPI_FIELDS,
        OracleConfig,
        compute_kpis,
        is_valid,
        parse_occurred_at,
        percentile,
        period_start_ms,
        working_seconds,
    )

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
EVER = (0, 10**15)  # a window holding every event of these tests


def at(day: int, hhmm: str, month: int = 11) -> str:
    """RFC 3339 string for a November 2026 day and time in +08:00."""
    return f"2026-{month:02d}-{day:02d}T{hhmm}:00+08:00"


def ms(day: int, hhmm: str, month: int = 11) -> int:
    hours, minutes = (int(p) for p in hhmm.split(":"))
    moment = dt.datetime(2026, month, day, hours, minutes, tzinfo=SHANGHAI)
    return int(moment.timestamp()) * 1000


class Events:
    """Builds (topic, event) records with fresh event ids."""

    def __init__(self):
        self.records: list[tuple[str, dict]] = []

    def add(self, topic: str, when, **fields) -> dict:
        event = {"event_id": f"ev-{len(self.records) + 1}", "occurred_at": when, **fields}
        self.records.append((topic, event))
        return event

    def opened(self, ticket, when, customer="c1", category="printer", priority="P2", **more):
        return self.add("ticket-opened", when, ticket_id=ticket, customer_id=customer,
                        channel="phone", priority=priority, category=category, **more)

    def response(self, ticket, when, engineer):
        return self.add("ticket-first-response", when, ticket_id=ticket, engineer_id=engineer)

    def escalated(self, ticket, when, engineer):
        return self.add("ticket-escalated", when, ticket_id=ticket, from_engineer_id=engineer)

    def onsite(self, ticket, when, engineer):
        return self.add("ticket-onsite-arrived", when, ticket_id=ticket, engineer_id=engineer)

    def resolved(self, ticket, when, engineer):
        return self.add("ticket-resolved", when, ticket_id=ticket, engineer_id=engineer)

    def reopened(self, ticket, when):
        return self.add("ticket-reopened", when, ticket_id=ticket)

    def survey(self, ticket, when, csat, nps=None):
        extra = {} if nps is None else {"nps": nps}
        return self.add("survey-submitted", when, ticket_id=ticket, csat=csat, **extra)

    def complaint(self, engineer, when, **more):
        return self.add("complaint-filed", when, engineer_id=engineer, severity="minor", **more)

    def assessment(self, engineer, when, dimension, score, role="supervisor", **more):
        return self.add("assessment-recorded", when, engineer_id=engineer, dimension=dimension,
                        score=score, assessor_role=role, **more)

    def kpis(self, window=EVER, **kwargs):
        return compute_kpis(self.records, *window, **kwargs)


# ------------------------------------------------------------------ first response and SLA


def test_first_response_time_percentiles_and_sla():
    ev = Events()
    ev.opened("T1", at(2, "09:00"), priority="P1")
    ev.response("T1", at(2, "09:10"), "e1")  # 600 s, within 900 s
    ev.opened("T2", at(2, "10:00"), priority="P1")
    ev.response("T2", at(2, "10:15"), "e1")  # 900 s, exactly the target: within
    ev.opened("T3", at(2, "11:00"), priority="P1")
    ev.response("T3", at(2, "11:30"), "e1")  # 1800 s, late
    ev.response("T3", at(2, "11:40"), "e2")  # not the first response: nothing

    k = ev.kpis()
    assert set(k) == {"e1"}
    e1 = k["e1"]
    assert e1["first_responses"] == 3
    assert e1["frt_avg_s"] == 1100.0  # (600 + 900 + 1800) / 3
    assert e1["frt_p50_s"] == 900.0
    assert e1["frt_p90_s"] == pytest.approx(1620.0)  # h = 1.8: 900 + 0.8 * 900
    assert e1["frt_sla_rate"] == pytest.approx(2 / 3)
    assert e1["frt_avg_s_bh"] == 1100.0  # all inside Monday's working hours
    assert e1["resolutions"] == 0 and e1["aht_avg_s"] is None


def test_first_response_is_earliest_by_event_time_not_arrival():
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.response("T1", at(2, "09:50"), "e2")  # arrives first, but later in event time
    ev.response("T1", at(2, "09:20"), "e1")
    k = ev.kpis()
    assert set(k) == {"e1"}
    assert k["e1"]["frt_avg_s"] == 1200.0


def test_sla_on_the_business_clock_over_a_weekend():
    ev = Events()
    ev.opened("T1", at(6, "17:55"), priority="P1")  # Friday
    ev.response("T1", at(9, "09:05"), "e1")  # Monday
    calendar = ev.kpis()["e1"]
    assert calendar["frt_avg_s"] == 227_400.0  # 63 h 10 min
    assert calendar["frt_avg_s_bh"] == 600.0  # 5 min Friday + 5 min Monday
    assert calendar["frt_sla_rate"] == 0.0
    business = ev.kpis(config=OracleConfig(sla_clock="business"))["e1"]
    assert business["frt_sla_rate"] == 1.0


# ------------------------------------------------------------------ episodes and handling time


def test_handling_time_over_two_episodes_with_a_reopen():
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.resolved("T1", at(2, "10:00"), "e1")  # episode 1: 3600 s
    ev.reopened("T1", at(3, "09:00"))
    ev.resolved("T1", at(3, "11:00"), "e2")  # episode 2: 7200 s
    k = ev.kpis()
    assert k["e1"]["resolutions"] == 1
    assert k["e1"]["aht_avg_s"] == 3600.0
    assert k["e1"]["aht_p50_s"] == 3600.0 and k["e1"]["aht_p90_s"] == 3600.0
    assert k["e1"]["aht_avg_s_bh"] == 3600.0
    assert k["e1"]["fcr_rate"] == 0.0  # reopened within 7 days
    assert k["e1"]["repeat_rate_7d"] == 1.0
    assert k["e2"]["aht_avg_s"] == 7200.0
    assert k["e2"]["fcr_rate"] == 0.0  # episode 2
    assert k["e2"]["repeat_rate_7d"] == 0.0 and k["e2"]["repeat_rate_30d"] == 0.0


def test_handling_time_in_business_hours_over_the_night():
    ev = Events()
    ev.opened("T1", at(2, "17:00"))
    ev.resolved("T1", at(3, "10:00"), "e1")
    e1 = ev.kpis()["e1"]
    assert e1["aht_avg_s"] == 17 * 3600.0
    assert e1["aht_avg_s_bh"] == 2 * 3600.0  # 17:00-18:00 Monday, 09:00-10:00 Tuesday


def test_resolution_sla_per_priority_and_episode():
    ev = Events()
    ev.opened("T1", at(2, "09:00"), customer="c1", priority="P1")
    ev.resolved("T1", at(2, "17:00"), "e1")  # 8 h, exactly the P1 target: within
    ev.opened("T2", at(2, "09:00"), customer="c2", priority="P1")
    ev.resolved("T2", at(2, "17:01"), "e1")  # 8 h 1 min: late
    ev.opened("T3", at(2, "09:00"), customer="c3", priority="P2")
    ev.resolved("T3", at(3, "09:00"), "e1")  # 24 h, the P2 target: within
    ev.opened("T4", at(2, "09:00"), customer="c4", priority="P1")
    ev.resolved("T4", at(2, "10:00"), "e1")  # episode 1: 1 h, within
    ev.reopened("T4", at(4, "09:00"))
    ev.resolved("T4", at(4, "18:00"), "e1")  # episode 2 from the reopen: 9 h, late
    e1 = ev.kpis()["e1"]
    assert e1["resolutions"] == 5
    assert e1["aht_sla_rate"] == pytest.approx(3 / 5)
    tighter = OracleConfig(aht_targets_s={"P1": 3600, "P2": 3600, "P3": 3600, "P4": 3600})
    assert ev.kpis(config=tighter)["e1"]["aht_sla_rate"] == pytest.approx(1 / 5)  # T4's first


def test_resolution_sla_on_the_business_clock_over_a_weekend():
    ev = Events()
    ev.opened("T1", at(6, "17:00"), priority="P1")  # Friday
    ev.resolved("T1", at(9, "16:00"), "e1")  # Monday: 71 h, of which 1 h + 7 h working
    assert ev.kpis()["e1"]["aht_sla_rate"] == 0.0
    business = ev.kpis(config=OracleConfig(sla_clock="business"))["e1"]
    assert business["aht_avg_s_bh"] == 8 * 3600.0
    assert business["aht_sla_rate"] == 1.0


def test_redundant_resolved_and_redundant_reopen_change_nothing():
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.reopened("T1", at(2, "09:30"))  # while open: nothing
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.resolved("T1", at(2, "11:00"), "e2")  # while resolved: nothing
    k = ev.kpis()
    assert set(k) == {"e1"}
    assert k["e1"]["resolutions"] == 1
    assert k["e1"]["aht_avg_s"] == 3600.0  # episode 1 still starts at the opened time
    assert k["e1"]["fcr_rate"] == 1.0
    assert k["e1"]["repeat_rate_30d"] == 0.0


def test_a_second_reopen_while_open_does_not_restart_the_episode():
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.reopened("T1", at(2, "11:00"))
    ev.reopened("T1", at(2, "12:00"))  # already open: nothing
    ev.resolved("T1", at(2, "13:00"), "e2")
    assert ev.kpis()["e2"]["aht_avg_s"] == 7200.0  # from the first reopen


def test_resolved_before_opened_by_clock_skew_still_ends_episode_one():
    ev = Events()
    ev.opened("T1", at(2, "10:00"))
    ev.response("T1", at(2, "09:58"), "e1")
    ev.resolved("T1", at(2, "09:59"), "e1")
    e1 = ev.kpis()["e1"]
    assert e1["resolutions"] == 1
    assert e1["aht_avg_s"] == 0.0 and e1["aht_avg_s_bh"] == 0.0
    assert e1["frt_avg_s"] == 0.0
    assert e1["fcr_rate"] == 1.0


def test_several_opened_the_first_in_event_time_is_the_one():
    ev = Events()
    ev.opened("T1", at(2, "10:00"), customer="c1", priority="P1")
    ev.opened("T1", at(2, "09:00"), customer="c2", priority="P4")  # earlier: this one
    ev.response("T1", at(2, "09:30"), "e1")
    e1 = ev.kpis()["e1"]
    assert e1["frt_avg_s"] == 1800.0
    assert e1["frt_sla_rate"] == 1.0  # P4 target 86400 s (P1 would have failed)


# ------------------------------------------------------------------ first-contact resolution


def test_first_contact_resolution_cases():
    ev = Events()
    # ok: responded and resolved by the same engineer
    ev.opened("A", at(2, "09:00"), customer="cA")
    ev.response("A", at(2, "09:05"), "eA")
    ev.resolved("A", at(2, "10:00"), "eA")
    # ok: no response recorded at all
    ev.opened("B", at(2, "09:00"), customer="cB")
    ev.resolved("B", at(2, "10:00"), "eB")
    # not: escalated during episode 1
    ev.opened("C", at(2, "09:00"), customer="cC")
    ev.response("C", at(2, "09:05"), "eC")
    ev.escalated("C", at(2, "09:30"), "eC")
    ev.resolved("C", at(2, "10:00"), "eC")
    # not: the first responder is someone else
    ev.opened("D", at(2, "09:00"), customer="cD")
    ev.response("D", at(2, "09:05"), "eX")
    ev.resolved("D", at(2, "10:00"), "eD")
    # not: reopened exactly 7 days after (0 <= t - R <= 7 days)
    ev.opened("E", at(2, "09:00"), customer="cE")
    ev.resolved("E", at(2, "10:00"), "eE")
    ev.reopened("E", at(9, "10:00"))
    # ok: reopened 7 days and 1 minute after (but a 30-day repeat)
    ev.opened("F", at(2, "09:00"), customer="cF")
    ev.resolved("F", at(2, "10:00"), "eF")
    ev.reopened("F", at(9, "10:01"))

    k = ev.kpis()
    assert k["eA"]["fcr_rate"] == 1.0
    assert k["eB"]["fcr_rate"] == 1.0
    assert k["eC"]["fcr_rate"] == 0.0 and k["eC"]["escalations"] == 1
    assert k["eD"]["fcr_rate"] == 0.0
    assert k["eX"]["first_responses"] == 1 and k["eX"]["resolutions"] == 0
    assert k["eE"]["fcr_rate"] == 0.0 and k["eE"]["repeat_rate_7d"] == 1.0
    assert k["eF"]["fcr_rate"] == 1.0
    assert k["eF"]["repeat_rate_7d"] == 0.0 and k["eF"]["repeat_rate_30d"] == 1.0


def test_escalation_while_resolved_belongs_to_no_episode():
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.response("T1", at(2, "09:05"), "e1")
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.escalated("T1", at(2, "11:00"), "e1")  # after the resolution: not in episode 1
    e1 = ev.kpis()["e1"]
    assert e1["fcr_rate"] == 1.0
    assert e1["escalations"] == 1  # still an escalation by e1


def test_escalation_at_the_same_instant_as_the_resolution_is_in_the_episode():
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.escalated("T1", at(2, "10:00"), "e1")  # equal time: escalated sorts before resolved
    assert ev.kpis()["e1"]["fcr_rate"] == 0.0


def test_fcr_rate_is_a_share_of_resolutions():
    ev = Events()
    for n, customer in enumerate(["c1", "c2", "c3", "c4"]):
        ticket = f"T{n}"
        ev.opened(ticket, at(2, "09:00"), customer=customer)
        ev.response(ticket, at(2, "09:05"), "e1" if n else "e9")
        ev.resolved(ticket, at(2, "10:00"), "e1")
    assert ev.kpis()["e1"]["fcr_rate"] == 0.75


# ------------------------------------------------------------------ repeat by a new ticket


def test_repeat_by_new_ticket_of_same_customer_and_category():
    ev = Events()
    # c1/printer: a new ticket 4 days after the resolution -> 7-day and 30-day repeat
    ev.opened("T1", at(2, "09:00"), customer="c1", category="printer")
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.opened("T2", at(6, "10:00"), customer="c1", category="printer")
    # c2/printer: a new ticket 18 days after -> 30-day repeat only
    ev.opened("T3", at(2, "09:00"), customer="c2", category="printer")
    ev.resolved("T3", at(2, "10:00"), "e2")
    ev.opened("T4", at(20, "10:00"), customer="c2", category="printer")
    # c3/printer: new tickets of another category, or opened before the resolution -> none
    ev.opened("T5", at(2, "09:00"), customer="c3", category="printer")
    ev.resolved("T5", at(2, "10:00"), "e3")
    ev.opened("T6", at(3, "10:00"), customer="c3", category="network")
    ev.opened("T7", at(1, "10:00"), customer="c3", category="printer")
    # c4/printer: a new ticket 31 days after -> none
    ev.opened("T8", at(2, "09:00"), customer="c4", category="printer")
    ev.resolved("T8", at(2, "10:00"), "e4")
    ev.opened("T9", at(3, "10:00", month=12), customer="c4", category="printer")

    k = ev.kpis()
    assert (k["e1"]["repeat_rate_7d"], k["e1"]["repeat_rate_30d"]) == (1.0, 1.0)
    assert k["e1"]["fcr_rate"] == 1.0  # a new ticket does not undo first-contact resolution
    assert (k["e2"]["repeat_rate_7d"], k["e2"]["repeat_rate_30d"]) == (0.0, 1.0)
    assert (k["e3"]["repeat_rate_7d"], k["e3"]["repeat_rate_30d"]) == (0.0, 0.0)
    assert (k["e4"]["repeat_rate_7d"], k["e4"]["repeat_rate_30d"]) == (0.0, 0.0)


def test_repeat_rate_is_a_share_of_resolutions():
    ev = Events()
    ev.opened("T1", at(2, "09:00"), customer="c1")
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.opened("T2", at(3, "09:00"), customer="c1")  # repeats T1
    ev.resolved("T2", at(3, "10:00"), "e1")  # nothing after it
    e1 = ev.kpis()["e1"]
    assert e1["resolutions"] == 2
    assert e1["repeat_rate_7d"] == 0.5


# ------------------------------------------------------------------ surveys


def test_survey_credit_resolver_then_first_responder_then_assignee():
    ev = Events()
    # resolved before the survey: the resolver
    ev.opened("T1", at(2, "09:00"), customer="c1", assignee_id="a1")
    ev.response("T1", at(2, "09:10"), "r1")
    ev.resolved("T1", at(2, "10:00"), "s1")
    ev.survey("T1", at(2, "11:00"), csat=5)
    # survey before the resolution: the first responder
    ev.opened("T2", at(2, "09:00"), customer="c2", assignee_id="a2")
    ev.response("T2", at(2, "09:10"), "r2")
    ev.survey("T2", at(2, "09:30"), csat=4)
    ev.resolved("T2", at(2, "10:00"), "s2")
    # no resolution yet, first response after the survey: still the first responder
    ev.opened("T3", at(2, "09:00"), customer="c3", assignee_id="a3")
    ev.survey("T3", at(2, "09:30"), csat=3)
    ev.response("T3", at(2, "09:40"), "r3")
    # no resolution, no response: the assignee
    ev.opened("T4", at(2, "09:00"), customer="c4", assignee_id="a4")
    ev.survey("T4", at(2, "09:30"), csat=2)
    # nobody: counts for no engineer
    ev.opened("T5", at(2, "09:00"), customer="c5")
    ev.survey("T5", at(2, "09:30"), csat=1)

    k = ev.kpis()
    assert k["s1"]["surveys"] == 1 and k["s1"]["csat_avg"] == 5.0
    assert k["r1"]["surveys"] == 0 and k["r1"]["csat_avg"] is None
    assert k["r2"]["surveys"] == 1 and k["r2"]["csat_avg"] == 4.0
    assert k["s2"]["surveys"] == 0
    assert k["r3"]["surveys"] == 1 and k["r3"]["csat_avg"] == 3.0
    assert k["a4"]["surveys"] == 1 and k["a4"]["csat_avg"] == 2.0
    assert "a1" not in k and "a2" not in k and "a3" not in k
    assert sum(v["surveys"] for v in k.values()) == 4


def test_survey_credit_is_the_latest_resolution_at_or_before_the_survey():
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.reopened("T1", at(2, "11:00"))
    ev.survey("T1", at(2, "11:30"), csat=2)  # after e1's resolution, before e2's
    ev.resolved("T1", at(2, "12:00"), "e2")
    ev.survey("T1", at(2, "12:00"), csat=5)  # at the instant of e2's resolution
    k = ev.kpis()
    assert k["e1"]["surveys"] == 1 and k["e1"]["csat_avg"] == 2.0
    assert k["e2"]["surveys"] == 1 and k["e2"]["csat_avg"] == 5.0


def test_csat_positive_rate_and_nps():
    ev = Events()
    for n, (csat, nps) in enumerate([(5, 10), (4, 9), (3, 7), (2, 3), (5, None)]):
        ticket = f"T{n}"
        ev.opened(ticket, at(2, "09:00"), customer=f"c{n}")
        ev.resolved(ticket, at(2, "10:00"), "e1")
        ev.survey(ticket, at(2, "11:00"), csat=csat, nps=nps)
    e1 = ev.kpis()["e1"]
    assert e1["surveys"] == 5
    assert e1["csat_avg"] == pytest.approx(3.8)  # 19 / 5
    assert e1["csat_positive_rate"] == 0.6  # 5, 4, 5 of five
    assert e1["nps_responses"] == 4
    assert e1["nps"] == 25.0  # 100 * (2 promoters - 1 detractor) / 4; a 7 is passive


# ------------------------------------------------------------------ onsite, complaints, escalations


def test_onsite_first_arrival_and_on_time_rate():
    ev = Events()
    ev.opened("T1", at(2, "09:00"), customer="c1", priority="P2")
    ev.onsite("T1", at(2, "15:00"), "e1")  # 6 h <= 8 h
    ev.onsite("T1", at(2, "16:00"), "e2")  # not the first arrival: nothing
    ev.opened("T2", at(2, "09:00"), customer="c2", priority="P1")
    ev.onsite("T2", at(2, "14:00"), "e1")  # 5 h > 4 h
    k = ev.kpis()
    assert set(k) == {"e1"}
    assert k["e1"]["onsite_visits"] == 2
    assert k["e1"]["onsite_arrival_avg_s"] == 19_800.0  # (21600 + 18000) / 2
    assert k["e1"]["onsite_arrival_avg_s_bh"] == 19_800.0
    assert k["e1"]["onsite_on_time_rate"] == 0.5


def test_complaints_and_complaint_rate():
    ev = Events()
    for ticket in ("T1", "T2"):
        ev.opened(ticket, at(2, "09:00"), customer=ticket)
        ev.resolved(ticket, at(2, "10:00"), "e1")
    ev.complaint("e1", at(3, "09:00"), ticket_id="T1")
    ev.complaint("e2", at(3, "09:00"), ticket_id="never-opened")  # not a held ticket event
    k = ev.kpis()
    assert k["e1"]["complaints"] == 1 and k["e1"]["complaint_rate"] == 0.5
    assert k["e2"]["complaints"] == 1 and k["e2"]["complaint_rate"] is None
    assert k["e2"]["resolutions"] == 0


# ------------------------------------------------------------------ assessments


def test_review360_weighted_over_roles_and_renormalised():
    ev = Events()
    ev.assessment("e1", at(2, "09:00"), "review360", 80, role="supervisor")
    ev.assessment("e1", at(2, "09:00"), "review360", 90, role="supervisor")
    ev.assessment("e1", at(2, "09:00"), "review360", 70, role="peer")
    ev.assessment("e1", at(2, "09:00"), "review360", 10, role="self")  # weight 0
    ev.assessment("e2", at(2, "09:00"), "review360", 50, role="self")
    ev.assessment("e1", at(2, "09:00"), "compliance", 60, role="peer")
    ev.assessment("e1", at(2, "09:00"), "compliance", 90, role="self")
    k = ev.kpis()
    # role means: supervisor 85, peer 70; (0.4 * 85 + 0.3 * 70) / (0.4 + 0.3) = 55 / 0.7
    assert k["e1"]["assessment_review360"] == pytest.approx(55 / 0.7)
    assert k["e1"]["assessment_review360_count"] == 4
    assert k["e1"]["assessment_compliance"] == 75.0  # plain mean over all roles
    assert k["e1"]["assessment_compliance_count"] == 2
    assert k["e1"]["assessment_attitude"] is None and k["e1"]["assessment_attitude_count"] == 0
    assert k["e2"]["assessment_review360"] is None  # only a weight-0 role
    assert k["e2"]["assessment_review360_count"] == 1
    only_peers = OracleConfig(review_weights={"peer": 1.0})
    assert ev.kpis(config=only_peers)["e1"]["assessment_review360"] == 70.0


def test_assessment_period_places_it_at_the_period_start():
    nov = (ms(1, "00:00"), ms(1, "00:00", month=12))
    oct_ = (ms(1, "00:00", month=10), ms(1, "00:00"))
    ev = Events()
    ev.assessment("e1", at(5, "10:00", month=12), "training", 80, period="2026-11")
    ev.assessment("e2", at(5, "10:00", month=12), "training", 70, period="2026-Q4")
    ev.assessment("e3", at(5, "10:00", month=12), "training", 60, period="2026")
    ev.assessment("e4", at(5, "10:00"), "training", 50)  # no period: its occurred_at
    assert set(ev.kpis(nov)) == {"e1", "e4"}
    assert ev.kpis(nov)["e1"]["assessment_training"] == 80.0
    assert set(ev.kpis(oct_)) == {"e2"}  # Q4 starts 1 October
    assert set(ev.kpis((ms(1, "00:00", month=1), ms(1, "00:01", month=1)))) == {"e3"}
    # 2026-11-01T00:00 in Shanghai is 2026-10-31T16:00Z
    from zoneinfo import ZoneInfo
    expected = int(dt.datetime(2026, 10, 31, 16, tzinfo=dt.UTC).timestamp()) * 1000
    assert period_start_ms("2026-11", ZoneInfo("Asia/Shanghai")) == expected


# ------------------------------------------------------------------ business hours


def test_working_seconds_within_one_day():
    cfg = OracleConfig()
    assert working_seconds(ms(2, "08:00"), ms(2, "12:00"), cfg) == 3 * 3600
    assert working_seconds(ms(2, "09:00"), ms(2, "09:00") + 1500, cfg) == 1.5
    assert working_seconds(ms(2, "12:00"), ms(2, "08:00"), cfg) == 0  # negative clamps


def test_working_seconds_over_a_weekend_and_a_holiday():
    friday_17, monday_10 = ms(6, "17:00"), ms(9, "10:00")
    assert working_seconds(friday_17, monday_10, OracleConfig()) == 7200  # 1 h + 1 h
    holiday = OracleConfig(holidays=frozenset({dt.date(2026, 11, 9)}))
    assert working_seconds(friday_17, ms(10, "10:00"), holiday) == 7200  # Monday is off
    makeup = OracleConfig(workdays=frozenset({dt.date(2026, 11, 7)}))
    assert working_seconds(friday_17, monday_10, makeup) == 3600 + 9 * 3600 + 3600


def test_working_seconds_over_two_weeks_and_custom_hours():
    assert working_seconds(ms(2, "09:00"), ms(16, "09:00"), OracleConfig()) == 10 * 9 * 3600
    lunch = OracleConfig(work_hours={0: [("09:00", "12:00"), ("13:00", "18:00")]})
    assert working_seconds(ms(2, "00:00"), ms(3, "00:00"), lunch) == 8 * 3600
    assert working_seconds(ms(3, "00:00"), ms(4, "00:00"), lunch) == 0  # Tuesday: no hours


def test_working_seconds_use_the_business_timezone():
    utc = OracleConfig(timezone="UTC")
    # Monday 09:00-18:00 +08:00 is 01:00-10:00 UTC: one hour of it (09:00-10:00 UTC) is work
    assert working_seconds(ms(2, "09:00"), ms(2, "18:00"), utc) == 3600


# ------------------------------------------------------------------ held events


def test_events_of_a_ticket_without_opened_are_held():
    ev = Events()
    ev.response("T1", at(2, "09:10"), "e1")
    ev.escalated("T1", at(2, "09:20"), "e1")
    ev.onsite("T1", at(2, "09:30"), "e1")
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.survey("T1", at(2, "11:00"), csat=5)
    assert ev.kpis() == {}
    ev.opened("T1", at(2, "09:00"))  # arrives last, takes effect for everything
    e1 = ev.kpis()["e1"]
    assert (e1["resolutions"], e1["first_responses"], e1["escalations"]) == (1, 1, 1)
    assert (e1["onsite_visits"], e1["surveys"]) == (1, 1)


# ------------------------------------------------------------------ duplicates and bad input


def test_duplicates_count_once_and_the_first_copy_wins():
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    first = ev.resolved("T1", at(2, "10:00"), "e1")
    ev.add("ticket-resolved", at(2, "12:00"), ticket_id="T1", engineer_id="e2")
    ev.records[-1][1]["event_id"] = first["event_id"]  # same id, other content
    ev.records.append(ev.records[0])  # the opened again
    complaint = ev.complaint("e1", at(3, "09:00"))
    ev.records.append(("complaint-filed", json.dumps(complaint).encode()))
    k = ev.kpis()
    assert set(k) == {"e1"}
    assert k["e1"]["resolutions"] == 1 and k["e1"]["aht_avg_s"] == 3600.0
    assert k["e1"]["complaints"] == 1


def good_resolved(**changes):
    event = {"event_id": "x1", "occurred_at": at(2, "10:00"), "ticket_id": "T1",
             "engineer_id": "e1"}
    event.update(changes)
    return {k: v for k, v in event.items() if v is not DROP}


DROP = object()

BAD_RECORDS = [
    ("ticket-resolved", b"not json"),
    ("ticket-resolved", b"\xff\xfe{}"),
    ("ticket-resolved", "[1, 2]"),
    ("ticket-resolved", good_resolved(engineer_id=DROP)),
    ("ticket-resolved", good_resolved(event_id="")),
    ("ticket-resolved", good_resolved(event_id="x" * 129)),
    ("ticket-resolved", good_resolved(ticket_id=7)),
    ("ticket-resolved", good_resolved(engineer_id="e" * 129)),
    ("ticket-resolved", good_resolved(occurred_at="2026-11-02T10:00:00")),  # no offset
    ("ticket-resolved", good_resolved(occurred_at="2026-11-31T10:00:00Z")),
    ("ticket-resolved", good_resolved(occurred_at=True)),
    ("ticket-resolved", good_resolved(occurred_at=1.5e12)),
    ("ticket-resolved", good_resolved(occurred_at=None)),
    ("ticket-reopened", {"event_id": "x2", "occurred_at": 0, "ticket_id": "T1",
                         "reason": "r" * 4001}),
    ("survey-submitted", {"event_id": "x3", "occurred_at": 0, "ticket_id": "T1", "csat": 6}),
    ("survey-submitted", {"event_id": "x4", "occurred_at": 0, "ticket_id": "T1", "csat": 4,
                          "nps": 11}),
    ("survey-submitted", {"event_id": "x5", "occurred_at": 0, "ticket_id": "T1", "csat": True}),
    ("ticket-opened", {"event_id": "x6", "occurred_at": 0, "ticket_id": "T1",
                       "customer_id": "c1", "channel": "fax", "priority": "P2",
                       "category": "printer"}),
    ("ticket-opened", {"event_id": "x7", "occurred_at": 0, "ticket_id": "T1",
                       "customer_id": "c1", "channel": "phone", "priority": "P5",
                       "category": "printer"}),
    ("complaint-filed", {"event_id": "x8", "occurred_at": 0, "engineer_id": "e1",
                         "severity": "huge"}),
    ("assessment-recorded", {"event_id": "x9", "occurred_at": 0, "engineer_id": "e1",
                             "dimension": "compliance", "score": 101,
                             "assessor_role": "peer"}),
    ("assessment-recorded", {"event_id": "x10", "occurred_at": 0, "engineer_id": "e1",
                             "dimension": "compliance", "score": 50, "assessor_role": "peer",
                             "period": "2026-13"}),
    ("assessment-recorded", {"event_id": "x11", "occurred_at": 0, "engineer_id": "e1",
                             "dimension": "luck", "score": 50, "assessor_role": "peer"}),
    ("no-such-topic", good_resolved()),
]


@pytest.mark.parametrize("topic,value", BAD_RECORDS)
def test_bad_records_are_invalid(topic, value):
    assert not is_valid(topic, value)


def test_good_records_are_valid():
    assert is_valid("ticket-resolved", good_resolved())
    assert is_valid("ticket-resolved", json.dumps(good_resolved(extra={"a": 1})).encode())
    assert is_valid("ticket-resolved", good_resolved(occurred_at=1_793_000_000_000))
    assert is_valid("ticket-resolved", good_resolved(engineer_id="工程师-张三"))
    assert is_valid("assessment-recorded", {"event_id": "a", "occurred_at": "2026-11-02T02:00:00Z",
                                            "engineer_id": "e1", "dimension": "review360",
                                            "score": 99.5, "assessor_role": "self",
                                            "period": "2026-Q4", "assessor_id": None})


def test_bad_records_change_nothing():
    ev = Events()
    ev.opened("T1", at(2, "09:00"))
    ev.resolved("T1", at(2, "10:00"), "e1")
    before = ev.kpis()
    ev.records.extend(BAD_RECORDS)
    assert ev.kpis() == before


def test_timestamps_with_offsets_and_epoch_millis():
    assert parse_occurred_at("2026-11-02T09:00:00+08:00") == ms(2, "09:00")
    assert parse_occurred_at("2026-11-02T01:00:00Z") == ms(2, "09:00")
    assert parse_occurred_at("2026-11-02T01:00:00.1239Z") == ms(2, "09:00") + 123
    assert parse_occurred_at(ms(2, "09:00")) == ms(2, "09:00")
    assert parse_occurred_at("2026-11-02T09:00:00") is None


# ------------------------------------------------------------------ windows and output shape


def test_window_is_half_open_on_the_credit_time():
    ev = Events()
    ev.opened("T1", at(1, "09:00"), customer="c1")
    ev.resolved("T1", at(2, "00:00"), "e1")  # exactly at from: in
    ev.opened("T2", at(2, "09:00"), customer="c2")
    ev.resolved("T2", at(3, "00:00"), "e2")  # exactly at to: out
    window = (ms(2, "00:00"), ms(3, "00:00"))
    k = ev.kpis(window)
    assert set(k) == {"e1"}
    assert k["e1"]["resolutions"] == 1


def test_output_has_every_field_with_zero_counts_and_null_values():
    ev = Events()
    ev.complaint("e1", at(2, "09:00"))
    e1 = ev.kpis()["e1"]
    assert tuple(e1) == KPI_FIELDS
    counts = {"resolutions", "first_responses", "escalations", "onsite_visits", "surveys",
              "nps_responses", "complaints"} | {f for f in KPI_FIELDS if f.endswith("_count")}
    for name in KPI_FIELDS:
        if name == "complaints":
            assert e1[name] == 1
        elif name in counts:
            assert e1[name] == 0 and type(e1[name]) is int
        else:
            assert e1[name] is None, name


def test_team_kpis_aggregate_samples_not_means():
    ev = Events()
    for ticket, engineer, start, end in [("T1", "e1", "09:00", "10:00"),
                                         ("T2", "e1", "11:00", "12:00"),
                                         ("T3", "e2", "09:00", "11:30"),
                                         ("T4", "e3", "09:00", "09:30"),
                                         ("T5", "e4", "09:00", "09:10")]:
        ev.opened(ticket, at(2, start), customer=ticket)
        ev.resolved(ticket, at(2, end), engineer)
    roster = {"e1": "tA", "e2": "tA", "e3": "tB"}
    k = ev.kpis(roster=roster, group="team")
    assert set(k) == {"tA", "tB", None}
    assert k["tA"]["resolutions"] == 3
    assert k["tA"]["aht_avg_s"] == 5400.0  # (3600 + 3600 + 9000) / 3, not (3600 + 9000) / 2
    assert k["tB"]["aht_avg_s"] == 1800.0
    assert k[None]["aht_avg_s"] == 600.0  # e4 is not in the roster


# ------------------------------------------------------------------ helpers and size


def test_percentile_is_linear_between_closest_ranks():
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([1, 2, 3, 4], 0.9) == pytest.approx(3.7)
    assert percentile([7], 0.9) == 7
    assert percentile([], 0.5) is None
    np = pytest.importorskip("numpy")
    rng = random.Random(7)
    for n in range(1, 30):
        xs = [rng.randint(0, 10_000) for _ in range(n)]
        for q in (0.5, 0.9):
            assert percentile(xs, q) == pytest.approx(float(np.quantile(xs, q)))


def test_fifty_thousand_events_in_a_few_seconds():
    rng = random.Random(1)
    ev = Events()
    start = ms(2, "09:00")
    for n in range(10_000):
        ticket = f"T{n}"
        opened = start + rng.randint(0, 30 * 86_400_000)
        engineer = f"e{rng.randint(1, 50)}"
        ev.opened(ticket, opened, customer=f"c{rng.randint(1, 20)}",
                  category=rng.choice(["printer", "network"]))
        ev.response(ticket, opened + rng.randint(0, 7_200_000), engineer)
        ev.resolved(ticket, opened + rng.randint(0, 3 * 86_400_000), engineer)
        ev.survey(ticket, opened + 4 * 86_400_000, csat=rng.randint(1, 5), nps=rng.randint(0, 10))
        if n % 2:
            ev.reopened(ticket, opened + rng.randint(0, 10 * 86_400_000))
    k = ev.kpis()  # its speed is not asserted here: no test asserts a wall-clock duration
    assert sum(v["resolutions"] for v in k.values()) >= 10_000
