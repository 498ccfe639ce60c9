"""A redelivered message resends what its first delivery sent: the state may have been saved
before a crash lost those sends (at-least-once), and resending is harmless."""

from schemas.calendar import WorkCalendar
from streams import lifecycle, ticket

OPENED = {"k": "opened", "id": "o1", "t": 0, "ticket_id": "T1", "customer_id": "C",
          "category": "net", "priority": "P2", "channel": "phone", "team_id": None,
          "assignee_id": "E1", "requires_onsite": False}
RESOLVED = {"k": "resolved", "id": "r1", "t": 3_600_000, "ticket_id": "T1", "engineer_id": "E1"}


def test_a_redelivered_ticket_event_resends_every_fact():
    state = ticket.new_state()
    lifecycle.apply(state, OPENED, WorkCalendar())
    first = lifecycle.apply(state, RESOLVED, WorkCalendar()).facts
    again = lifecycle.apply(state, RESOLVED, WorkCalendar()).facts
    assert {f["kind"] for f in again if not f["del"]} == {"ticket", "resolution"}
    assert all(f["v"] == 2 for f in first + again)


def test_a_redelivered_opened_also_clears_what_was_listed_as_held():
    state = ticket.new_state()
    held = lifecycle.apply(state, RESOLVED, WorkCalendar(), arrived_ms=5).facts
    assert [(f["kind"], f["event_id"], f["held_since"]) for f in held] == [("held", "r1", 5)]
    released = lifecycle.apply(state, OPENED, WorkCalendar()).facts
    again = lifecycle.apply(state, OPENED, WorkCalendar()).facts
    for out in (released, again):
        assert [(f["kind"], f["event_id"]) for f in out if f["del"]] == [("held", "r1")]
