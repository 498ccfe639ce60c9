"""One step of the lifecycle agent: a ticket record in, the facts to send (or a refusal) out.

Pure: the agent (streams/app.py) loads the ticket's state from its table, calls ``apply`` and
sends what it returns. An event that changes nothing (a redelivery, or one that can no longer
change a fact) resends every current fact: the state may have been saved before a crash lost
the sends, and resending is harmless because the sink keeps the highest version of each fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams import ticket
from streams.calendar import WorkCalendar
from streams.facts import changes, fact_key, ticket_facts, tombstone


@dataclass(frozen=True)
class Step:
    facts: list[dict] = field(default_factory=list)
    refused: str | None = None  # why the record was not taken (it goes to the dead letters)
    after: dict[str, dict] = field(default_factory=dict, compare=False)  # the state's facts now


def apply(state: dict, rec: dict, calendar: WorkCalendar, arrived_ms: int = 0,
          before: dict[str, dict] | None = None) -> Step:
    """Merge ``rec`` into ``state`` (in place) and say what the sink must hear. ``before`` is
    the state's facts when the caller still has them (``Step.after`` of its previous step)."""
    if before is None:
        before = ticket_facts(state, calendar)
    merged = ticket.merge(state, rec, arrived_ms)
    if isinstance(merged, str):
        return Step(refused=merged, after=before)
    if not merged:
        return Step(resend(state, before), after=before)
    after = ticket_facts(state, calendar)
    return Step(changes(before, after, state["v"]), after=after)


def resend(state: dict, facts: dict[str, dict]) -> list[dict]:
    """Every current fact, and once the ticket is opened a tombstone for each event that may
    have been listed as held: a crash may have lost the first sends of either."""
    out = [{**fact, "v": state["v"], "del": 0} for fact in facts.values()]
    if not ticket.held(state):
        out += [{**tombstone(fact_key({"kind": "held", "ticket_id": rec["ticket_id"],
                                       "event_id": rec["id"]})), "v": state["v"]}
                for rec in ticket.ordered(state) if rec["k"] != "opened"]
    return out
