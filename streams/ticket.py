"""A ticket's state: the set of its distinct events, merged in any order any number of times.

The state is a plain dict so that the Faust table's changelog stores it as JSON:
``{"events": {event_id: record}}``. A record is the compact form of a wire event that the
lifecycle needs. Merging is a set union keyed by event_id, so it is commutative and idempotent:
any arrival order and any redelivery give the same state.
"""

from __future__ import annotations

from schemas.events import WireEvent

# Ties in occurred_at are broken by this order, then by event_id (kpis.md).
KIND_ORDER = {
    "opened": 0,
    "first_response": 1,
    "escalated": 2,
    "onsite_arrived": 3,
    "resolved": 4,
    "reopened": 5,
    "survey": 6,
}
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


def record(event: WireEvent) -> dict:
    """The compact record of a ticket event kept in the ticket's state."""
    kept = {"k": event.kind, "id": event.event_id, "t": event.occurred_at,
            "ticket_id": event.ticket_id}
    for name in _FIELDS[event.kind]:
        kept[name] = getattr(event, name)
    return kept


def new_state() -> dict:
    return {"events": {}, "version": 0}


def merge(state: dict, rec: dict) -> bool:
    """Add one record; False (and no change) when its event_id is already known."""
    if rec["id"] in state["events"]:
        return False
    state["events"][rec["id"]] = rec
    state["version"] += 1
    return True


def ordered(state: dict) -> list[dict]:
    """The ticket's events in the ticket event order of kpis.md."""
    return sorted(state["events"].values(), key=lambda r: (r["t"], KIND_ORDER[r["k"]], r["id"]))


def held(state: dict) -> bool:
    """Its ticket-opened has not arrived: nothing of the ticket takes effect yet."""
    return not any(r["k"] == "opened" for r in state["events"].values())


def opened(events: list[dict]) -> dict | None:
    """The ticket's (first) opened record; None while it has not arrived (events are held)."""
    return next((r for r in events if r["k"] == "opened"), None)
