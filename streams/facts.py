"""From a ticket's state to its facts, and from two fact sets to what must be sent.

A fact is a row for one ClickHouse table (``schemas/facts.py`` names the columns) plus
``kind``, ``v`` (the version: the number of changes of the ticket's state, which only
grows) and ``del`` (1 for a tombstone). The sink upserts by key and version, so sending a fact
twice, or an older version after a newer one, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.calendar import WorkCalendar
from schemas.facts import FACT_TABLES
from streams import ticket
from streams.episode import Lifecycle, step, walk
from streams.resolution import (
    duration_s,
    first_contact,
    owner,
    reopened_within,
    survey_credit,
)


@dataclass
class Derived:
    """What a ticket's state says at one version: its lifecycle (None while held) and facts.
    Derivable from the state at any time; kept between steps only to save the work."""

    version: int
    life: Lifecycle | None
    facts: dict[tuple, dict]  # by fact_key
    event_ids: set[str]


def ticket_facts(state: dict, calendar: WorkCalendar) -> dict[tuple, dict]:
    """Every fact of a ticket, by fact key; while its opened event is held back, one ``held``
    fact per waiting event (the operator's view of what waits, and since when)."""
    return derive(state, calendar).facts


def derive(state: dict, calendar: WorkCalendar) -> Derived:
    events = ticket.ordered(state)
    opened = ticket.opened(events)
    if opened is None:
        since = state.get("hs", {})
        held = (_held(rec, since.get(rec["id"], 0)) for rec in events)
        return Derived(state["v"], None, {fact_key(f): f for f in held},
                       ticket.event_ids(state))
    life = walk(opened, events)
    facts = [_ticket_row(life, calendar)]
    facts += [_resolution(life, ep, calendar) for ep in life.resolutions()]
    facts += [_survey(life, rec) for rec in life.surveys]
    facts += [_escalation(life, rec, number) for rec, number in life.escalations]
    return Derived(state["v"], life, {fact_key(f): f for f in facts}, ticket.event_ids(state))


# Kinds whose event, when it comes last in the ticket order, changes only facts found from the
# end of the walk: the ticket row, its own fact, and the resolution just before a reopen (the
# only one a later reopen can still flag: every earlier one is followed by the reopen that
# started the next episode). The first response, the onsite arrival and the opened change
# facts all over the ticket, so they take the full walk.
APPENDABLE = frozenset({"escalated", "resolved", "reopened", "survey"})


def appended(life: Lifecycle, rec: dict, calendar: WorkCalendar) -> list[dict]:
    """Step ``life`` past ``rec`` (later than every event walked so far, of an APPENDABLE
    kind) and return every fact that may have changed."""
    was_open = life.is_open
    step(life, rec)
    changed = [_ticket_row(life, calendar)]
    kind = rec["k"]
    if kind == "escalated":
        changed.append(_escalation(life, rec, life.escalations[-1][1]))
    elif kind == "resolved" and was_open:
        changed.append(_resolution(life, life.episodes[-1], calendar))
    elif kind == "reopened" and not was_open:
        changed.append(_resolution(life, life.episodes[-2], calendar))
    elif kind == "survey":
        changed.append(_survey(life, rec))
    return changed


def fact_key(fact: dict) -> tuple:
    """Kind and stable identity (the table's ORDER BY columns less the time a correction may
    move, schemas/facts.py): the same fact before and after its time moved. Only a key of the
    worker's own dicts, never sent."""
    kind = fact["kind"]
    return kind, *[fact[c] for c in FACT_TABLES[kind].stable]


def tombstone(fact: dict) -> dict:
    """The tombstone of ``fact`` as stored: every identity column, the time included, so that
    it lands in the fact's partition and replaces its row there."""
    kind = fact["kind"]
    return {"kind": kind, "del": 1, **{c: fact[c] for c in FACT_TABLES[kind].key}}


def placed(fact: dict) -> tuple:
    """Where the sink holds ``fact``: its table and full identity (time included)."""
    return fact["kind"], FACT_TABLES[fact["kind"]].identity(fact)


def changes(before: dict[tuple, dict], after: dict[tuple, dict], version: int) -> list[dict]:
    """The facts to send so that the sink, holding ``before``, comes to hold ``after``: the new
    and changed ones, and a tombstone for each one that is gone or whose time moved (its old
    identity, with the old time)."""
    out = []
    for key, fact in after.items():
        old = before.get(key)
        if old != fact:
            out.append({**fact, "v": version, "del": 0})
            if old is not None and placed(old) != placed(fact):
                out.append({**tombstone(old), "v": version})
    out += [{**tombstone(old), "v": version} for key, old in before.items() if key not in after]
    return out


def _held(rec: dict, since_ms: int) -> dict:
    return {"kind": "held", "ticket_id": rec["ticket_id"], "event_id": rec["id"],
            "event_kind": rec["k"], "occurred_at": rec["t"], "held_since": since_ms}


def _ms_duration(start: int, end: int, calendar: WorkCalendar) -> tuple[float, float]:
    return duration_s(start, end), calendar.working_seconds(start, end)


def _ticket_row(life: Lifecycle, calendar: WorkCalendar) -> dict:
    o = life.opened
    row = {
        "kind": "ticket", "ticket_id": o["ticket_id"], "customer_id": o["customer_id"],
        "category": o["category"], "priority": o["priority"], "channel": o["channel"],
        "team_id": o.get("team_id"), "assignee_id": o.get("assignee_id"),
        "requires_onsite": bool(o.get("requires_onsite")), "opened_at": o["t"],
        "status": "open" if life.is_open else "resolved", "episodes": len(life.episodes),
        "episode_start": life.episodes[-1].start_ms, "owner_id": owner(life),
        "escalations": len(life.escalations), "surveys": len(life.surveys),
    }
    if life.timing is None:
        life.timing = _timing(life, calendar)
    row.update(life.timing)
    return row


def _timing(life: Lifecycle, calendar: WorkCalendar) -> dict:
    """The ticket row's first-response and onsite columns (working time is the dear part)."""
    o = life.opened
    timing = {
        "first_response_at": None, "first_responder_id": None, "frt_s": None, "frt_bh_s": None,
        "onsite_at": None, "onsite_engineer_id": None, "onsite_s": None, "onsite_bh_s": None,
    }
    if life.first_response is not None:
        fr = life.first_response
        timing["first_response_at"], timing["first_responder_id"] = fr["t"], fr["engineer_id"]
        timing["frt_s"], timing["frt_bh_s"] = _ms_duration(o["t"], fr["t"], calendar)
    if life.onsite is not None:
        arrival = life.onsite
        timing["onsite_at"], timing["onsite_engineer_id"] = arrival["t"], arrival["engineer_id"]
        timing["onsite_s"], timing["onsite_bh_s"] = _ms_duration(o["t"], arrival["t"], calendar)
    return timing


def _resolution(life: Lifecycle, episode, calendar: WorkCalendar) -> dict:
    resolved = episode.resolution
    aht, aht_bh = _ms_duration(episode.start_ms, resolved["t"], calendar)
    return {
        "kind": "resolution", "ticket_id": life.opened["ticket_id"], "episode": episode.number,
        "engineer_id": resolved["engineer_id"], "resolved_at": resolved["t"],
        "episode_start": episode.start_ms, "aht_s": aht, "aht_bh_s": aht_bh,
        "escalated": bool(episode.escalations), "fcr": first_contact(life, episode),
        "reopened_7d": reopened_within(life, resolved["t"], 7),
        "reopened_30d": reopened_within(life, resolved["t"], 30),
        "customer_id": life.opened["customer_id"], "category": life.opened["category"],
        "priority": life.opened["priority"],
    }


def _survey(life: Lifecycle, rec: dict) -> dict:
    engineer, rule = survey_credit(life, rec["t"])
    return {
        "kind": "survey", "event_id": rec["id"], "ticket_id": rec["ticket_id"],
        "submitted_at": rec["t"], "engineer_id": engineer, "credited_by": rule,
        "csat": rec["csat"], "nps": rec.get("nps"),
    }


def _escalation(life: Lifecycle, rec: dict, number: int) -> dict:
    return {
        "kind": "escalation", "event_id": rec["id"], "ticket_id": rec["ticket_id"],
        "engineer_id": rec["from_engineer_id"], "to_engineer_id": rec.get("to_engineer_id"),
        "escalated_at": rec["t"], "episode": number,
    }
