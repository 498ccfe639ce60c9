"""Properties of the pure lifecycle step (streams/lifecycle.py): any arrival order, with any
redelivery, ends in the same facts.

A ticket is generated as compact records (streams.ticket.record's shape) with times drawn from a
few offsets, so ties in occurred_at and the exact 7 / 30 day boundaries come up often. "The sink
view" of a stream of facts is what ReplacingMergeTree(version, deleted) shows under FINAL: per
table identity the highest version, tombstones dropped.
"""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.calendar import WorkCalendar
from schemas.facts import FACT_TABLES
from streams import lifecycle, ticket
from streams.facts import ticket_facts

CALENDAR = WorkCalendar()
DAY = 86_400_000
BASE = 1_793_548_800_000  # 2026-11-02 00:00 +08:00, a Monday
# Offsets from BASE: ties, clock skew (before the opened) and both sides of 7 and 30 days.
OFFSETS = (-60_000, 0, 1, 60_000, 3_600_000, DAY, 7 * DAY, 7 * DAY + 1, 8 * DAY, 30 * DAY,
           30 * DAY + 1)
ENGINEERS = ("E1", "E2", "E3")
# kpis.md: for equal times, opened, first-response, escalated, onsite-arrived, resolved,
# reopened, survey; then event_id.
ORDER = ("opened", "first_response", "escalated", "onsite_arrived", "resolved", "reopened",
         "survey")
# Resolves and reopens weigh double: several episodes are the interesting cases.
OTHER_KINDS = ("first_response", "escalated", "onsite_arrived", "resolved", "resolved",
               "reopened", "reopened", "survey")
PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------

def rec(kind: str, event_id: str, t: int, ticket_id: str = "T1", **fields) -> dict:
    return {"k": kind, "id": event_id, "t": t, "ticket_id": ticket_id, **fields}


def opened(event_id, t, ticket_id="T1", customer_id="C1", category="printer", priority="P2",
           assignee_id=None, **more):
    fields = {"customer_id": customer_id, "category": category, "priority": priority,
              "channel": "phone", "team_id": "team-a", "assignee_id": assignee_id,
              "requires_onsite": False, **more}
    return rec("opened", event_id, t, ticket_id, **fields)


def response(event_id, t, engineer, ticket_id="T1"):
    return rec("first_response", event_id, t, ticket_id, engineer_id=engineer)


def resolved(event_id, t, engineer, ticket_id="T1"):
    return rec("resolved", event_id, t, ticket_id, engineer_id=engineer)


def reopened(event_id, t, ticket_id="T1"):
    return rec("reopened", event_id, t, ticket_id)


def escalated(event_id, t, engineer, to="E9", ticket_id="T1"):
    return rec("escalated", event_id, t, ticket_id, from_engineer_id=engineer, to_engineer_id=to)


times = st.sampled_from(OFFSETS).map(lambda o: BASE + o)
engineers = st.sampled_from(ENGINEERS)


def kind_fields(kind: str, customer: str | None, category: str | None):
    """The kind's own fields (streams.ticket._FIELDS), as a strategy of dicts."""
    if kind == "opened":
        return st.fixed_dictionaries({
            "customer_id": st.just(customer) if customer else st.sampled_from(("C1", "C2")),
            "category": st.just(category) if category else st.sampled_from(("printer", "pc")),
            "priority": st.sampled_from(("P1", "P2", "P3", "P4")),
            "channel": st.sampled_from(("phone", "email")),
            "team_id": st.sampled_from(("team-a", None)),
            "assignee_id": st.sampled_from((*ENGINEERS, None)),
            "requires_onsite": st.booleans(),
        })
    if kind in ("first_response", "onsite_arrived", "resolved"):
        return st.fixed_dictionaries({"engineer_id": engineers})
    if kind == "escalated":
        return st.fixed_dictionaries({"from_engineer_id": engineers,
                                      "to_engineer_id": st.sampled_from((*ENGINEERS, None))})
    if kind == "survey":
        return st.fixed_dictionaries({"csat": st.integers(1, 5),
                                      "nps": st.one_of(st.none(), st.integers(0, 10))})
    return st.just({})


@st.composite
def ticket_events(draw, ticket_id="T1", customer=None, category=None):
    """One ticket's distinct records: 0-2 opened (usually 1) and up to 10 others."""
    n_opened = draw(st.sampled_from((0, 1, 1, 1, 2)))
    others = draw(st.lists(st.sampled_from(OTHER_KINDS), max_size=10))
    kinds = ["opened"] * n_opened + others
    ids = draw(st.lists(st.integers(0, 999), min_size=len(kinds), max_size=len(kinds),
                        unique=True))
    return [{"k": kind, "id": f"{ticket_id}-e{n:03d}", "t": draw(times), "ticket_id": ticket_id,
             **draw(kind_fields(kind, customer, category))}
            for kind, n in zip(kinds, ids, strict=True)]


def arrival(data, events: list) -> list:
    """A permutation of ``events`` with copies of some of them inserted anywhere."""
    order = list(data.draw(st.permutations(events)))
    if not events:
        return order
    copies = data.draw(st.lists(st.tuples(st.sampled_from(events), st.integers(0, 10**6)),
                                max_size=6))
    for event, where in copies:
        order.insert(where % (len(order) + 1), copy.deepcopy(event))
    return order


# ---------------------------------------------------------------------------------------------
# The sink's view and an independent reading of the episodes
# ---------------------------------------------------------------------------------------------

def identity(fact: dict) -> tuple:
    table = FACT_TABLES[fact["kind"]]
    return table.table, table.identity(fact)


def sink_view(facts: list[dict]) -> dict[tuple, dict]:
    """Per identity the highest version (a later equal one wins), tombstones dropped; without
    the v/del fields. Two different contents under one identity and version would make the
    result depend on arrival order, so that is refused here."""
    best: dict[tuple, dict] = {}
    for fact in facts:
        key = identity(fact)
        held = best.get(key)
        if held is not None and held["v"] == fact["v"]:
            assert held == fact, f"two contents at version {fact['v']}: {held} / {fact}"
        if held is None or fact["v"] >= held["v"]:
            best[key] = fact
    return {key: {k: v for k, v in f.items() if k not in ("v", "del")}
            for key, f in best.items() if not f["del"]}


def by_identity(facts: dict[str, dict]) -> dict[tuple, dict]:
    return {identity(f): f for f in facts.values()}


def state_of(events: list[dict]) -> dict:
    state = ticket.new_state()
    for event in events:
        ticket.merge(state, event)
    return state


def run(order: list[dict]) -> tuple[dict, list[list[dict]]]:
    """Apply the records in order on a fresh state, as the agent does (each step handed what
    the previous one derived): (state, facts per step). What a step derives incrementally is
    what a full walk of its state gives."""
    state = ticket.new_state()
    facts, derived = [], None
    for event in order:
        step = lifecycle.apply(state, event, CALENDAR, before=derived)
        assert step.refused is None
        assert step.after.facts == ticket_facts(state, CALENDAR)
        facts.append(step.facts)
        derived = step.after
    return state, facts


def distinct(events: list[dict]) -> list[dict]:
    """First copy per event_id, in the ticket event order of kpis.md."""
    seen = {}
    for event in events:
        seen.setdefault(event["id"], event)
    return sorted(seen.values(), key=lambda e: (e["t"], ORDER.index(e["k"]), e["id"]))


def expected_resolutions(events: list[dict]) -> list[tuple[int, str, int]]:
    """(episode, engineer, resolved time) of every resolution: the walk starts open in episode 1;
    a resolve while open ends the episode, a reopen while resolved starts the next."""
    is_open, episode, found = True, 1, []
    for event in distinct(events):
        if event["k"] == "resolved" and is_open:
            found.append((episode, event["engineer_id"], event["t"]))
            is_open = False
        elif event["k"] == "reopened" and not is_open:
            episode, is_open = episode + 1, True
    return found


# ---------------------------------------------------------------------------------------------
# (a) any order, any duplicates: the same facts, those of the final state
# ---------------------------------------------------------------------------------------------

@PROPERTY
@given(events=ticket_events(), data=st.data())
def test_any_arrival_order_with_duplicates_ends_in_the_final_states_facts(events, data):
    first, second = arrival(data, events), arrival(data, events)

    state, steps = run(first)
    other_state, other_steps = run(second)

    expected = by_identity(ticket_facts(state, CALENDAR))
    assert sink_view([f for out in steps for f in out]) == expected
    assert sink_view([f for out in other_steps for f in out]) == expected
    assert by_identity(ticket_facts(other_state, CALENDAR)) == expected
    # Folding keeps only what can still change a fact: the state never holds more than the
    # distinct events, and its version counts the changes.
    assert len(state["recs"]) <= len({e["id"] for e in events}) >= state["v"]


# ---------------------------------------------------------------------------------------------
# (b) held until opened; from then on the facts sent so far are always the current facts
# ---------------------------------------------------------------------------------------------

@PROPERTY
@given(events=ticket_events(), data=st.data())
def test_events_are_held_until_opened_then_every_prefix_is_consistent(events, data):
    order = arrival(data, events)
    state = ticket.new_state()
    sent: list[dict] = []
    seen_opened = False
    for event in order:
        out = lifecycle.apply(state, event, CALENDAR).facts
        first_opened = event["k"] == "opened" and not seen_opened
        seen_opened = seen_opened or event["k"] == "opened"
        sent += out
        if not seen_opened:
            assert {f["kind"] for f in out} <= {"held"}, f"emitted before the opened: {out}"
        elif first_opened:
            assert any(f["kind"] == "ticket" for f in out), "the opened released no ticket row"
        view = sink_view(sent)
        assert view == by_identity(ticket_facts(state, CALENDAR))
        # Every event kept while waiting is listed (a later duplicate first response, which can
        # never change a fact, is folded away rather than kept).
        assert seen_opened or {f["event_id"] for f in view.values()} == {
            r["id"] for r in ticket.ordered(state)}, "a waiting event is not listed"


# ---------------------------------------------------------------------------------------------
# (b2) a fact's identity holds its time: a step whose sends a crash lost is made good by the
# resend of its redelivered event, tombstones of the identities a moved fact left included
# ---------------------------------------------------------------------------------------------

@PROPERTY
@given(events=ticket_events(), data=st.data())
def test_lost_sends_are_made_good_by_the_redelivery(events, data):
    state, sent = with_lost_sends(data, arrival(data, events), lifecycle.apply)

    assert sink_view(sent) == by_identity(ticket_facts(state, CALENDAR))


def with_lost_sends(data, units: list, step) -> tuple[dict, list[dict]]:
    """``step(state, unit, CALENDAR, before=...)`` over ``units`` (records, or batches of them)
    on a fresh state, the sends of a drawn set of steps lost; each lost unit then comes again,
    since its offset was not committed. (The state, every fact the sink heard.)"""
    state, derived, sent = ticket.new_state(), None, []
    lost = data.draw(st.sets(st.integers(0, max(0, len(units) - 1))))
    for n, unit in enumerate(units):
        done = step(state, unit, CALENDAR, before=derived)
        derived = done.after
        if n not in lost:
            sent += done.facts
    for n in sorted(lost):
        if n < len(units):
            sent += step(state, copy.deepcopy(units[n]), CALENDAR).facts
    return state, sent


def batches(data, order: list[dict]) -> list[list[dict]]:
    """``order`` cut into consecutive batches of any sizes (as bundles cut a ticket's records)."""
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=4)))
    edges = [0, *(c for c in cuts if c < len(order)), len(order)]
    return [order[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]


@PROPERTY
@given(events=ticket_events(), data=st.data())
def test_a_batch_of_a_tickets_records_ends_where_one_by_one_does(events, data):
    """apply_many (the worker's step per ticket and bundle): the same state as the records one
    by one, every record taken, what it derived is the full walk, and the sink view of what it
    sent is the final state's facts, at most one fact per identity per batch."""
    order = arrival(data, events)
    alone, _ = run(copy.deepcopy(order))
    state, derived, sent = ticket.new_state(), None, []
    for batch in batches(data, order):
        steps = lifecycle.apply_many(state, batch, CALENDAR, before=derived)
        assert steps.refused == [] and steps.taken == batch
        assert steps.after.facts == ticket_facts(state, CALENDAR)
        placed = [(f["kind"], FACT_TABLES[f["kind"]].identity(f)) for f in steps.facts]
        assert len(placed) == len(set(placed))
        derived, sent = steps.after, sent + steps.facts

    # The same events; fewer versions, and only tombstones of identities the batches did send
    # (a held row folded away within one batch was never sent).
    assert {k: v for k, v in state.items() if k not in ("v", "gone")} == {
        k: v for k, v in alone.items() if k not in ("v", "gone")}
    assert all(g in alone.get("gone", []) for g in state.get("gone", []))
    assert sink_view(sent) == by_identity(ticket_facts(state, CALENDAR))


@PROPERTY
@given(events=ticket_events(), data=st.data())
def test_a_batch_whose_sends_were_lost_is_made_good_by_its_redelivery(events, data):
    order = arrival(data, events)
    state, sent = with_lost_sends(data, batches(data, order), lifecycle.apply_many)

    assert sink_view(sent) == by_identity(ticket_facts(state, CALENDAR))


def test_a_batch_counts_the_records_that_wait_for_the_opened():
    state = ticket.new_state()
    steps = lifecycle.apply_many(state, [resolved("e2", BASE + DAY, "E1"),
                                         response("e1", BASE + 60_000, "E1")], CALENDAR)
    assert steps.held == 2 and {f["kind"] for f in steps.facts} == {"held"}
    steps = lifecycle.apply_many(state, [reopened("e3", BASE + 2 * DAY), opened("e0", BASE),
                                         resolved("e4", BASE + 3 * DAY, "E2")], CALENDAR)
    assert steps.held == 1  # the reopen came before the opened; the resolve after it
    assert {f["kind"] for f in steps.facts if not f["del"]} == {"ticket", "resolution"}


def test_a_late_earlier_resolve_moves_the_resolution_and_tombstones_its_old_time():
    late = BASE + 40 * DAY  # another month than BASE's
    state, steps = run([opened("e1", BASE), resolved("e3", late, "E2"),
                        resolved("e2", BASE + DAY, "E1")])

    (only,) = resolutions_of(ticket_facts(state, CALENDAR))
    assert (only["engineer_id"], only["resolved_at"]) == ("E1", BASE + DAY)
    gone = [f for f in steps[-1] if f["del"]]
    assert gone == [{"kind": "resolution", "del": 1, "resolved_at": late, "ticket_id": "T1",
                     "episode": 1, "v": state["v"]}]
    assert sink_view([f for out in steps for f in out]) == by_identity(
        ticket_facts(state, CALENDAR))
    assert state["gone"] == [["resolution", late, "T1", 1]]


def test_an_earlier_opened_moves_the_ticket_row_and_resend_repeats_the_tombstone():
    state, steps = run([opened("e1", BASE + 40 * DAY), opened("e0", BASE)])

    (row,) = [f for f in ticket_facts(state, CALENDAR).values() if f["kind"] == "ticket"]
    assert row["opened_at"] == BASE
    again = lifecycle.apply(state, opened("e0", BASE), CALENDAR).facts  # a redelivery
    assert {"kind": "ticket", "del": 1, "opened_at": BASE + 40 * DAY, "ticket_id": "T1",
            "v": state["v"]} in again
    assert sink_view(steps[0] + again) == by_identity(ticket_facts(state, CALENDAR))


# ---------------------------------------------------------------------------------------------
# (c) resolutions: one per resolve that comes while open, in the ticket order
# ---------------------------------------------------------------------------------------------

@PROPERTY
@given(events=ticket_events(), data=st.data())
def test_resolutions_are_the_resolves_that_come_while_open(events, data):
    _, steps = run(arrival(data, events))

    view = sink_view([f for out in steps for f in out])
    got = sorted((f["episode"], f["engineer_id"], f["resolved_at"])
                 for f in view.values() if f["kind"] == "resolution")
    has_opened = any(e["k"] == "opened" for e in events)
    assert got == (expected_resolutions(events) if has_opened else [])


# ---------------------------------------------------------------------------------------------
# Edge rules of kpis.md, by example
# ---------------------------------------------------------------------------------------------

def resolutions_of(facts: dict[str, dict]) -> list[dict]:
    return sorted((f for f in facts.values() if f["kind"] == "resolution"),
                  key=lambda f: f["episode"])


def test_a_resolve_while_resolved_changes_nothing():
    events = [opened("e1", BASE), response("e2", BASE + 60_000, "E1"),
              resolved("e3", BASE + 3_600_000, "E1")]
    state, _ = run(events)
    before = ticket_facts(state, CALENDAR)

    step = lifecycle.apply(state, resolved("e4", BASE + DAY, "E2"), CALENDAR)

    assert step == lifecycle.Step([])
    assert ticket_facts(state, CALENDAR) == before
    (only,) = resolutions_of(before)
    assert (only["engineer_id"], only["resolved_at"]) == ("E1", BASE + 3_600_000)


def test_a_reopen_while_open_changes_nothing():
    events = [opened("e1", BASE), response("e2", BASE + 60_000, "E1"),
              resolved("e3", BASE + 3_600_000, "E1")]
    without, _ = run(events)
    state, _ = run(events[:2])

    step = lifecycle.apply(state, reopened("e4", BASE + 120_000), CALENDAR)
    assert step == lifecycle.Step([])
    lifecycle.apply(state, events[2], CALENDAR)

    assert ticket_facts(state, CALENDAR) == ticket_facts(without, CALENDAR)
    (only,) = resolutions_of(ticket_facts(state, CALENDAR))
    assert (only["episode"], only["episode_start"], only["reopened_7d"]) == (1, BASE, False)


def test_an_escalation_between_resolution_and_reopen_belongs_to_no_episode():
    events = [opened("e1", BASE), response("e2", BASE + 60_000, "E1"),
              resolved("e3", BASE + 3_600_000, "E1"), escalated("e4", BASE + DAY, "E1"),
              reopened("e5", BASE + 8 * DAY), resolved("e6", BASE + 9 * DAY, "E2")]
    state, _ = run(events)
    facts = ticket_facts(state, CALENDAR)

    (escalation,) = [f for f in facts.values() if f["kind"] == "escalation"]
    assert escalation["episode"] == 0
    first, second = resolutions_of(facts)
    assert (first["escalated"], second["escalated"]) == (False, False)
    assert first["fcr"] is True  # the reopen is 8 days later, the escalation is in no episode


def test_an_escalation_during_an_episode_belongs_to_it():
    events = [opened("e1", BASE), escalated("e2", BASE + 60_000, "E1"),
              resolved("e3", BASE + 3_600_000, "E2")]
    state, _ = run(events)
    facts = ticket_facts(state, CALENDAR)

    (escalation,) = [f for f in facts.values() if f["kind"] == "escalation"]
    (only,) = resolutions_of(facts)
    assert (escalation["episode"], only["escalated"], only["fcr"]) == (1, True, False)


def test_fcr_is_false_when_the_first_responder_is_not_the_resolver():
    def fcr(*events):
        state, _ = run([opened("e1", BASE), *events])
        (only,) = resolutions_of(ticket_facts(state, CALENDAR))
        return only["fcr"]

    assert fcr(response("e2", BASE + 60_000, "E1"), resolved("e3", BASE + 600_000, "E2")) is False
    assert fcr(response("e2", BASE + 60_000, "E1"), resolved("e3", BASE + 600_000, "E1")) is True
    assert fcr(resolved("e3", BASE + 600_000, "E2")) is True  # nobody responded
    # The first responder is the earliest response, not the first to arrive.
    assert fcr(response("e4", BASE + 120_000, "E2"), response("e2", BASE + 60_000, "E1"),
               resolved("e3", BASE + 600_000, "E2")) is False
