"""One step of the lifecycle agent: a ticket record in, the facts to send (or a refusal) out.

Pure: the agent (streams/app.py) loads the ticket's state from its table, calls ``apply`` and
sends what it returns. An event that changes nothing (a redelivery, or one that can no longer
change a fact) resends every current fact: the state may have been saved before a crash lost
the sends, and resending is harmless because the sink keeps the highest version of each fact.

A fact's identity holds its event time (schemas/facts.py, ``moves``), so a fact whose time is
corrected leaves a row behind at its old identity until that row's tombstone arrives. Resending
the current facts does not replace that row, so the state remembers every identity it sent a
tombstone for (``gone``: one per correction, and one per event that was held) and a resend
sends those tombstones again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.calendar import WorkCalendar
from schemas.facts import FACT_TABLES
from streams import ticket
from streams.facts import (
    APPENDABLE,
    Derived,
    appended,
    changes,
    derive,
    fact_key,
    placed,
    tombstone,
)


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
        return Step(bury(state, changes(before.facts, after.facts, state["v"])), after=after)
    before.version = -1  # stepped in place: never reused if this step does not finish
    before.event_ids.add(rec["id"])
    out = []
    for fact in appended(before.life, rec, calendar):
        key = fact_key(fact)
        old = before.facts.get(key)
        if old != fact:
            before.facts[key] = fact
            out.append({**fact, "v": state["v"], "del": 0})
            if old is not None and placed(old) != placed(fact):  # its time moved
                out.append({**tombstone(old), "v": state["v"]})
    before.version = state["v"]
    return Step(bury(state, out), after=before)


@dataclass(frozen=True)
class Steps:
    """What one ticket's records of a batch did (``apply_many``)."""

    facts: list[dict]
    taken: list[dict]  # the records merged (or known already), in the order given
    refused: list[tuple[dict, ticket.Refused]]  # the others, with why
    held: int  # how many of ``taken`` wait for the ticket's opened (the metric)
    after: Derived | None = field(default=None, compare=False)


def apply_many(state: dict, recs: list[dict], calendar: WorkCalendar, arrived_ms: int = 0,
               before: Derived | None = None) -> Steps:
    """``apply`` for all of one ticket's records of a batch: each is merged into ``state``, the
    facts are derived once, and the sink hears only the difference (at the final version: an
    intermediate one would be replaced at once). A known record still resends everything, as
    in ``apply``. One record takes ``apply`` itself (its cheap path when it comes last)."""
    if len(recs) == 1:
        step = apply(state, recs[0], calendar, arrived_ms, before)
        if step.refused:
            return Steps(step.facts, [], [(recs[0], step.refused)], 0, step.after)
        return Steps(step.facts, recs, [], int(ticket.held(state)), step.after)
    if before is None or before.version != state["v"]:
        before = derive(state, calendar)
    known = set(before.event_ids)  # ``before`` may be reused: not changed here
    taken, refused, changed, unchanged = [], [], False, False
    for rec in recs:
        merged = ticket.merge(state, rec, arrived_ms, known)
        if isinstance(merged, ticket.Refused):
            refused.append((rec, merged))
            continue
        taken.append(rec)
        known.add(rec["id"])
        changed, unchanged = changed or merged, unchanged or not merged
    after = derive(state, calendar) if changed else before
    sent = bury(state, changes(before.facts, after.facts, state["v"])) if changed else []
    if unchanged:  # a redelivery: the first sends may have been lost (``resend``)
        sent = resend(state, after.facts)
    held = 0
    if before.life is None:  # nothing of a held ticket takes effect before its opened
        held = next((n for n, rec in enumerate(taken) if rec["k"] == "opened"), len(taken))
    return Steps(sent, taken, refused, held, after)


def bury(state: dict, sent: list[dict]) -> list[dict]:
    """Remember in ``state`` the identities ``sent`` tombstones, and forget one that a sent
    fact occupies again. Held rows too: an event folded away later (an earlier first response
    replacing it) is no longer in the state for a resend to find."""
    dead = [[f["kind"], *placed(f)[1]] for f in sent if f["del"]]
    gone = state.get("gone")
    if not dead and not gone:
        return sent
    alive = {placed(f) for f in sent if not f["del"]}
    kept = [g for g in (gone or []) + dead if (g[0], tuple(g[1:])) not in alive]
    state["gone"] = [g for n, g in enumerate(kept) if g not in kept[:n]]
    if not state["gone"]:
        del state["gone"]
    return sent


def resend(state: dict, facts: dict[tuple, dict]) -> list[dict]:
    """Every current fact, a tombstone for each identity a fact has left (``gone``), and once
    the ticket is opened a tombstone for each event that may have been listed as held: a crash
    may have lost the first sends of any of them."""
    out = [{**fact, "v": state["v"], "del": 0} for fact in facts.values()]
    gone = [{"kind": kind, **dict(zip(FACT_TABLES[kind].key, identity, strict=True))}
            for kind, *identity in state.get("gone", [])]
    if not ticket.held(state):
        gone += [{"kind": "held", "ticket_id": rec["ticket_id"], "event_id": rec["id"]}
                 for rec in ticket.ordered(state) if rec["k"] != "opened"]
    sent = {placed(fact) for fact in facts.values()}
    for fact in gone:
        if placed(fact) not in sent:  # neither current nor already tombstoned here
            sent.add(placed(fact))
            out.append({**tombstone(fact), "v": state["v"]})
    return out


def unheld(state: dict) -> list[dict]:
    """Tombstones of the held rows of a held state that retires (a version above the rows')."""
    return [{**tombstone({"kind": "held", "ticket_id": rec["ticket_id"],
                          "event_id": rec["id"]}), "v": state["v"] + 1}
            for rec in ticket.ordered(state)]
