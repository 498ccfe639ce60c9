"""A ticket's state is bounded whatever a producer sends (streams/ticket.py): events that can no
longer change a fact are folded away, ancillary events are capped, and no state may outgrow its
byte budget (the broker's message limit); what is refused says why."""

from __future__ import annotations

import orjson

from schemas.calendar import WorkCalendar
from schemas.deadletter import parse_event
from streams import lifecycle, ticket

T = 1_793_548_800_000
ID = "i" * 120  # ids near the 128-character limit make each stored event as big as it gets


def opened(event_id="o", t=T):
    return {"k": "opened", "id": event_id, "t": t, "ticket_id": "HOT", "customer_id": "C",
            "category": "pc", "priority": "P2", "channel": "phone", "team_id": None,
            "assignee_id": None, "requires_onsite": False}


def event(kind: str, n: int, **fields) -> dict:
    return {"k": kind, "id": f"{ID}-{n}", "t": T + n, "ticket_id": "HOT", **fields}


def test_escalations_past_the_cap_are_refused_but_lifecycle_events_never():
    state = ticket.new_state()
    for n in range(ticket.ANCILLARY_CAP):
        assert ticket.merge(state, event("escalated", n, from_engineer_id=f"E{ID}{n}",
                                         to_engineer_id=None)) is True
    refused = ticket.merge(state, event("escalated", 5000, from_engineer_id="E",
                                        to_engineer_id=None))
    assert refused.kind == "cap" and f"cap of {ticket.ANCILLARY_CAP}" in refused.reason
    # Whatever the arrival order, the ticket still opens and gets its first response.
    assert ticket.merge(state, opened()) is True
    assert ticket.merge(state, event("first_response", 5500, engineer_id="E1")) is True
    for n, kind in enumerate(("resolved", "reopened", "survey"), start=6000):
        fields = {"resolved": {"engineer_id": "E"}, "reopened": {},
                  "survey": {"csat": 5, "nps": None}}[kind]
        assert ticket.merge(state, event(kind, n, **fields)) is True
    assert ticket.size(state) < ticket.STATE_BUDGET < 1024 * 1024


def test_only_the_first_response_is_kept_an_earlier_one_replaces_it():
    state = ticket.new_state()
    ticket.merge(state, opened())
    assert ticket.merge(state, event("first_response", 50, engineer_id="E1")) is True
    assert ticket.merge(state, event("first_response", 90, engineer_id="E2")) is False
    assert ticket.merge(state, event("first_response", 10, engineer_id="E3")) is True
    responses = [r for r in ticket.ordered(state) if r["k"] == "first_response"]
    assert [r["engineer_id"] for r in responses] == ["E3"]


def test_a_state_that_would_outgrow_its_budget_is_refused_and_left_as_it_was(monkeypatch):
    monkeypatch.setattr(ticket, "STATE_BUDGET", 4000)
    state = ticket.new_state()
    step = lifecycle.apply(state, opened(), WorkCalendar())
    n = 0
    while not step.refused:
        n += 1
        kept = orjson.dumps(state)
        kind = "resolved" if n % 2 else "reopened"
        step = lifecycle.apply(state, event(kind, n, **({"engineer_id": f"E{ID}"}
                                                         if kind == "resolved" else {})),
                               WorkCalendar())
    assert step.refused.kind == "budget" and step.facts == []
    assert "would exceed 4000 bytes" in step.refused.reason
    assert orjson.dumps(state) == kept and ticket.size(state) <= 4000


def test_a_refused_record_goes_back_to_a_valid_event_of_its_topic():
    for rec in (opened(), event("escalated", 1, from_engineer_id="E1", to_engineer_id=None),
                event("survey", 2, csat=4, nps=None)):
        raw = orjson.dumps(ticket.wire_event(rec))
        parsed = parse_event(ticket.TOPICS[rec["k"]], raw)
        assert ticket.record(parsed) == rec
