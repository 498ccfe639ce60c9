"""A redelivered message resends what its first delivery sent: the state may have been saved
before a crash lost those sends (at-least-once), and resending is harmless."""

from streams import lifecycle, repeat, ticket
from streams.calendar import WorkCalendar

DAY = 86_400_000
OPENED = {"k": "opened", "id": "o1", "t": 0, "ticket_id": "T1", "customer_id": "C",
          "category": "net", "priority": "P2", "channel": "phone", "team_id": None,
          "assignee_id": "E1", "requires_onsite": False}
RESOLVED = {"k": "resolved", "id": "r1", "t": 3_600_000, "ticket_id": "T1", "engineer_id": "E1"}


def test_a_redelivered_ticket_event_resends_every_fact_and_report():
    state = ticket.new_state()
    lifecycle.apply(state, OPENED, WorkCalendar())
    first, first_reports = lifecycle.apply(state, RESOLVED, WorkCalendar())
    again, again_reports = lifecycle.apply(state, RESOLVED, WorkCalendar())
    assert {f["kind"] for f in again} == {"ticket", "resolution"}
    assert [f["v"] for f in again] == [2, 2] and all(f["v"] == 2 for f in first)
    assert again_reports == first_reports


def test_a_redelivered_index_report_resends_every_flag():
    index = repeat.new_index()
    report_a = {"ticket_id": "A", "v": 2, "opened": 0, "res": [[1, DAY]]}
    report_b = {"ticket_id": "B", "v": 1, "opened": 2 * DAY, "res": []}
    for report in (report_a, report_b):
        repeat.update(index, report)
        repeat.changes(index)
    assert repeat.update(index, report_b) is False
    resent = repeat.changes(index, resend_all=True)
    assert [(f["ticket_id"], f["new_ticket_7d"], f["new_ticket_30d"]) for f in resent] == [
        ("A", True, True)]


def test_an_older_report_changes_nothing():
    index = repeat.new_index()
    repeat.update(index, {"ticket_id": "A", "v": 3, "opened": 0, "res": [[1, DAY]]})
    assert repeat.update(index, {"ticket_id": "A", "v": 2, "opened": 0, "res": []}) is False
    assert index["tickets"]["A"]["res"] == [[1, DAY]]
