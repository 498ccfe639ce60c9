"""The drill-down (one row per resolution with every per-ticket fact) and the live backlog
(open tickets per owner), each checked against the oracle's tickets by the harness."""

from __future__ import annotations

from tests.test_oracle import Events, at, ms

HOUR = 3_600_000
# kpis.md "Drill-down": ticket, customer, category, priority, opened, first response and by
# whom, escalations, resolved and by whom, episode, handling time, first-contact flag, repeat
# flags, survey scores credited.
COLUMNS = {"ticket_id", "customer_id", "category", "priority", "channel", "opened_at",
           "first_response_at", "first_responder_id", "frt_s", "ticket_escalations",
           "escalated_in_episode", "episode_start", "resolved_at", "resolved_by", "team_id",
           "episode", "handling_time_s", "handling_time_bh_s", "first_contact", "reopened_7d",
           "reopened_30d", "new_ticket_7d", "new_ticket_30d", "repeat_7d", "repeat_30d",
           "survey_csat", "survey_nps"}


def test_the_drilldown_has_a_row_per_resolution_with_every_per_ticket_fact(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"), customer="c1", priority="P1")
    ev.response("T1", at(2, "09:10"), "e2")
    ev.escalated("T1", at(2, "09:30"), "e2")
    ev.resolved("T1", at(2, "10:00"), "e1")
    ev.survey("T1", at(2, "11:00"), csat=4, nps=9)
    ev.reopened("T1", at(4, "09:00"))
    ev.resolved("T1", at(4, "12:00"), "e1")
    ev.survey("T1", at(4, "13:00"), csat=2)
    ev.opened("T2", at(20, "09:00"), customer="c1")  # a new ticket 16 days later
    rows = product(ev.records, roster={"e1": "tA"}).drilldown()
    assert set(rows[0]) == COLUMNS
    assert [(r["ticket_id"], r["episode"], r["resolved_by"], r["team_id"]) for r in rows] == [
        ("T1", 1, "e1", "tA"), ("T1", 2, "e1", "tA")]
    first = rows[0]
    assert (first["first_responder_id"], first["frt_s"], first["handling_time_s"]) == (
        "e2", 600.0, 3600.0)
    assert (first["escalated_in_episode"], first["first_contact"]) == (True, False)
    assert (first["reopened_7d"], first["new_ticket_7d"], first["repeat_30d"]) == (
        True, False, True)
    assert sorted(first["survey_csat"]) == [2, 4]  # both credited to e1 on this ticket


def test_the_drilldown_of_one_engineer_in_a_window(product):
    ev = Events()
    for n, (engineer, day) in enumerate([("e1", 2), ("e2", 2), ("e1", 3), ("e1", 4)]):
        ev.opened(f"T{n}", at(day, "09:00"), customer=f"c{n}")
        ev.resolved(f"T{n}", at(day, "10:00"), engineer)
    rows = product(ev.records).drilldown((ms(2, "10:00"), ms(4, "10:00")), engineer="e1")
    assert [r["ticket_id"] for r in rows] == ["T0", "T2"]


def test_the_backlog_owner_is_the_escalation_target_else_assignee_else_responder(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"), customer="c1", assignee_id="a1", priority="P1")
    ev.add("ticket-escalated", at(2, "10:00"), ticket_id="T1", from_engineer_id="a1",
           to_engineer_id="x1")
    ev.add("ticket-escalated", at(2, "11:00"), ticket_id="T1", from_engineer_id="x1")  # no "to"
    ev.opened("T2", at(2, "09:00"), customer="c2", assignee_id="a1", priority="P4")
    ev.opened("T3", at(2, "09:00"), customer="c3", priority="P3")
    ev.response("T3", at(2, "09:10"), "r3")
    ev.opened("T4", at(2, "09:00"), customer="c4")  # nobody: ''
    ev.opened("T5", at(2, "09:00"), customer="c5", assignee_id="a1")
    ev.resolved("T5", at(2, "10:00"), "a1")  # resolved: not in the backlog
    ev.opened("T6", at(2, "09:00"), customer="c6", assignee_id="a1", priority="P1")
    ev.resolved("T6", at(2, "10:00"), "a1")
    ev.reopened("T6", at(3, "09:00"))  # open again, since the reopen
    now = ms(3, "09:00") + 8 * HOUR + 1  # 32 h after the opened, 8 h after T6's reopen
    backlog = product(ev.records, roster={"x1": "tX"}).backlog(now)
    assert {e: (r["open_tickets"], r["overdue_tickets"]) for e, r in backlog.items()} == {
        "x1": (1, 1), "a1": (2, 1), "r3": (1, 0), "": (1, 1)}
    assert backlog["a1"]["oldest_open_age_s"] == (now - ms(2, "09:00")) / 1000
