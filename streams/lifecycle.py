"""One step of the lifecycle agent: a ticket record in, the facts to send (or a refusal) out.

Pure: the agent (streams/app.py) loads the ticket's state from its table, calls ``apply`` and
sends what it returns. An event that changes nothing (a redelivery, or one that can no longer
change a fact) resends every current fact: the state may have been saved before a crash lost
the sends, and resending is harmless because the sink keeps the highest version of each fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.calendar import WorkCalendar
from streams import ticket
from streams.facts import APPENDABLE, Derived, appended, changes, derive, fact_key, tombstone


@dataclass(frozen=True)
class Step:
    facts: list[dict] = field(default_factory=list)
    refused: ticket.Refused | None = None  # why the record was not taken (a dead letter)
    after: Derived | None = field(default=None, compare=False)  # the state's facts now


def apply(state: dict, rec: dict, calendar: WorkCalendar, arrived_ms: int = 0,
          before: Derived | None = None) -> Step:
    """Merge ``rec`` into ``state`` (in place) and say what the sink must hear. ``before`` is
    the caller's ``Step.after`` of the ticket's previous step, if it still has it: an event
    that comes last in the ticket order then costs the same however long the ticket's history
    (``appended``); any other takes the full walk."""
    if before is None or before.version != state["v"]:
        before = derive(state, calendar)
    merged = ticket.merge(state, rec, arrived_ms, before.event_ids)
    if isinstance(merged, ticket.Refused):
        return Step(refused=merged, after=before)
    if not merged:
        return Step(resend(state, before.facts), after=before)
    if before.life is None or rec["k"] not in APPENDABLE or state["recs"][-1][2] != rec["id"]:
        after = derive(state, calendar)
        return Step(changes(before.facts, after.facts, state["v"]), after=after)
    before.version = -1  # stepped in place: never reused if this step does not finish
    before.event_ids.add(rec["id"])
    out = []
    for fact in appended(before.life, rec, calendar):
        key = fact_key(fact)
        if before.facts.get(key) != fact:
            before.facts[key] = fact
            out.append({**fact, "v": state["v"], "del": 0})
    before.version = state["v"]
    return Step(out, after=before)


def resend(state: dict, facts: dict[str, dict]) -> list[dict]:
    """Every current fact, and once the ticket is opened a tombstone for each event that may
    have been listed as held: a crash may have lost the first sends of either."""
    out = [{**fact, "v": state["v"], "del": 0} for fact in facts.values()]
    if not ticket.held(state):
        out += [{**tombstone(fact_key({"kind": "held", "ticket_id": rec["ticket_id"],
                                       "event_id": rec["id"]})), "v": state["v"]}
                for rec in ticket.ordered(state) if rec["k"] != "opened"]
    return out


def unheld(state: dict) -> list[dict]:
    """Tombstones of the held rows of a held state that retires (a version above the rows')."""
    return [{**tombstone(fact_key({"kind": "held", "ticket_id": rec["ticket_id"],
                                   "event_id": rec["id"]})), "v": state["v"] + 1}
            for rec in ticket.ordered(state)]
