"""A ticket's state: its distinct events, merged in any order any number of times, in bounded space.

Merging is a set union keyed by event_id, so any arrival order and any redelivery give the same
state. The state is a plain dict stored as compact JSON in the Faust table (schema version
``SCHEMA``)::

    {"sv": 2, "tid": ticket_id, "v": version, "n": escalations accepted,
     "recs": [[kind code, occurred_at, event_id, *kind fields], ...],   # in ticket event order
     "hs": {event_id: arrived_ms},   # only while the ticket's opened has not arrived
     "gone": [[fact kind, *identity], ...]}   # identities tombstoned (streams/lifecycle.py)

Bounds (docs/decisions.md, "Bounded ticket state"): no state write may exceed the broker's
message limit, and one noisy ticket must not slow every other ticket down.

- Folded away: only the first ``opened``, ``first_response`` and ``onsite_arrived`` in the ticket
  event order can change a fact, so a later one is not stored (an earlier one replaces it).
- Capped: at most ``ANCILLARY_CAP`` escalations per ticket (the one ancillary kind kept many
  times); beyond that they are refused (dead-lettered with the reason). Opened, first response
  and onsite arrival are kept once each (folded above), so they need no cap and are never
  refused by it, whatever their arrival order: an opened arriving after a flood of escalations
  still opens the ticket. Resolutions, reopens and surveys make the lifecycle and the
  satisfaction credit and are never refused either.
- Budget: a state whose JSON would exceed ``STATE_BUDGET`` bytes is not written; the event that
  would grow it is refused with the reason (quarantine, not a crash loop).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass

import orjson

from schemas.events import WireEvent

SCHEMA = 2
# Ties in occurred_at are broken by this order, then by event_id (kpis.md).
KINDS = ("opened", "first_response", "escalated", "onsite_arrived", "resolved", "reopened",
         "survey")
KIND_ORDER = {kind: code for code, kind in enumerate(KINDS)}
_FIELDS = {
    "opened": ("customer_id", "category", "priority", "channel", "team_id", "assignee_id",
               "requires_onsite"),
    "first_response": ("engineer_id",),
    "escalated": ("from_engineer_id", "to_engineer_id"),
    "onsite_arrived": ("engineer_id",),
    "resolved": ("engineer_id",),
    "reopened": (),
    "survey": ("csat", "nps"),
}
# Wire field names of the kinds whose topic is not named after the kind (for re-encoding).
TOPICS = {"opened": "ticket-opened", "first_response": "ticket-first-response",
          "escalated": "ticket-escalated", "onsite_arrived": "ticket-onsite-arrived",
          "resolved": "ticket-resolved", "reopened": "ticket-reopened",
          "survey": "survey-submitted"}
_CODE_FIELDS = tuple(_FIELDS[kind] for kind in KINDS)
FIRST_ONLY = frozenset({KIND_ORDER["opened"], KIND_ORDER["first_response"],
                        KIND_ORDER["onsite_arrived"]})
CAPPED = KIND_ORDER["escalated"]  # ``n`` counts these
ANCILLARY_CAP = 1000
# Kafka's default message limit is 1 MiB; the changelog record also carries the key.
STATE_BUDGET = 768 * 1024


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a record is not taken into the state (it goes to the dead letters)."""

    kind: str  # cap, budget (the metric's label)
    reason: str


def internal_error(exc: Exception) -> Refused:
    """A bug met on one message: that message's dead letter, not a stopped pipeline."""
    return Refused("internal", f"internal error: {type(exc).__name__}: {exc}")


def record(event: WireEvent) -> dict:
    """The record of a ticket event that travels to the lifecycle step (by ticket_id)."""
    kept = {"k": event.kind, "id": event.event_id, "t": event.occurred_at,
            "ticket_id": event.ticket_id}
    for name in _FIELDS[event.kind]:
        kept[name] = getattr(event, name)
    return kept


def wire_event(rec: dict) -> dict:
    """A record back as a valid wire event of its topic (what a refused record's dead letter
    carries, so that it can be replayed)."""
    event = {"event_id": rec["id"], "occurred_at": rec["t"], "ticket_id": rec["ticket_id"]}
    event.update({name: rec.get(name) for name in _FIELDS[rec["k"]]
                  if rec.get(name) is not None})
    return event


def new_state(ticket_id: str = "") -> dict:
    return {"sv": SCHEMA, "tid": ticket_id, "v": 0, "n": 0, "recs": []}


def _compact(rec: dict) -> list:
    return [KIND_ORDER[rec["k"]], rec["t"], rec["id"], *(rec.get(f) for f in _FIELDS[rec["k"]])]


def _order(row: list) -> tuple:
    return row[1], row[0], row[2]


def merge(state: dict, rec: dict, arrived_ms: int = 0,
          known: set[str] | None = None) -> bool | Refused:
    """Add one record. True when the state changed; False when it changes nothing (a known
    event_id, or an event that can no longer change any fact); ``Refused`` when the event is
    refused and the state is left as it was. ``arrived_ms`` is remembered while the
    ticket is held (how long an event has waited for its opened). ``known`` is the set of the
    state's event ids when the caller keeps it (``event_ids``), saving a scan."""
    state["tid"] = state.get("tid") or rec["ticket_id"]
    rows: list[list] = state["recs"]
    if rec["id"] in (known if known is not None else event_ids(state)):
        return False
    row = _compact(rec)
    code = row[0]
    if code == CAPPED and state["n"] >= ANCILLARY_CAP:
        return Refused("cap", f"ticket {state['tid']} reached its cap of {ANCILLARY_CAP} "
                       "escalations")
    replaced = next((r for r in rows if r[0] == code), None) if code in FIRST_ONLY else None
    if replaced is not None and _order(replaced) <= _order(row):
        return False  # a later one never changes a fact
    candidate = {**state, "recs": list(rows)}
    if replaced is not None:
        candidate["recs"].remove(replaced)
    insort(candidate["recs"], row, key=_order)
    candidate["hs"] = _held_since(candidate, state.get("hs"), rec["id"], arrived_ms)
    if size(candidate) > STATE_BUDGET:
        return Refused("budget", f"ticket {state['tid']} state would exceed {STATE_BUDGET} "
                       f"bytes ({len(rows)} events kept)")
    state.update(candidate, v=state["v"] + 1, n=state["n"] + (code == CAPPED))
    if not state["hs"]:
        del state["hs"]
    return True


def _held_since(state: dict, before: dict | None, event_id: str, arrived_ms: int) -> dict:
    """event_id -> arrival time of the events still waiting for their opened."""
    if not held(state):
        return {}
    return {**(before or {}), event_id: arrived_ms}


def event_ids(state: dict) -> set[str]:
    return {row[2] for row in state["recs"]}


def size(state: dict) -> int:
    return len(orjson.dumps(state))


def ordered(state: dict) -> list[dict]:
    """The ticket's events in the ticket event order of kpis.md, as records."""
    tid = state["tid"]
    out = []
    for code, t, event_id, *values in state["recs"]:
        rec = {"k": KINDS[code], "id": event_id, "t": t, "ticket_id": tid}
        rec.update(zip(_CODE_FIELDS[code], values, strict=True))
        out.append(rec)
    return out


def held(state: dict) -> bool:
    """Its ticket-opened has not arrived: nothing of the ticket takes effect yet."""
    return not any(row[0] == 0 for row in state["recs"])


def opened(events: list[dict]) -> dict | None:
    """The ticket's (first) opened record; None while it has not arrived (events are held)."""
    return next((r for r in events if r["k"] == "opened"), None)


def encode(state: dict) -> bytes:
    return orjson.dumps(state)


def decode(raw: bytes | None, ticket_id: str) -> dict:
    """The stored state, or a new one. A state of another schema version is refused loudly
    rather than misread (a later version migrates it here)."""
    if raw is None:
        return new_state(ticket_id)
    state = orjson.loads(raw)
    if state.get("sv") != SCHEMA:
        raise ValueError(f"ticket state of schema {state.get('sv')!r}, expected {SCHEMA}")
    return state
