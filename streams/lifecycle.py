"""One step of the lifecycle agent: a ticket record in, the facts and index reports out.

Pure: the agent (streams/app.py) loads the ticket's state from its table, calls ``apply`` and
sends what it returns. A redelivered event (its event_id already in the state) resends every
current fact and report: the state may have been saved before a crash lost the sends, and
resending is harmless because the sink keeps the highest version of each fact.
"""

from __future__ import annotations

from streams import ticket
from streams.calendar import WorkCalendar
from streams.facts import changes, ticket_facts
from streams.repeat import index_key


def apply(state: dict, rec: dict, calendar: WorkCalendar) -> tuple[list[dict], list[tuple]]:
    """Merge ``rec`` into ``state`` (in place); returns (facts to send, (key, report) pairs)."""
    is_new = ticket.merge(state, rec)
    facts = ticket_facts(state, calendar)
    emitted = state.setdefault("emitted", {})
    version = state["version"]
    if is_new:
        out = changes(emitted, facts, version)
    else:
        out = [{**fact, "v": version, "del": 0} for fact in facts.values()]
    return out, index_reports(state, facts, resend=not is_new)


def index_reports(state: dict, facts: dict, resend: bool) -> list[tuple[str, dict]]:
    """What the (customer, category) index must hear about this ticket, if anything changed."""
    row = next((f for f in facts.values() if f["kind"] == "ticket"), None)
    if row is None:
        return []
    key = index_key(row["customer_id"], row["category"])
    res = sorted([f["episode"], f["resolved_at"]] for f in facts.values()
                 if f["kind"] == "resolution")
    current = [key, row["opened_at"], res]
    previous = state.get("indexed")
    if previous == current and not resend:
        return []
    state["indexed"] = current
    report = {"ticket_id": row["ticket_id"], "v": state["version"], "opened": row["opened_at"],
              "res": res}
    reports = [(key, report)]
    if previous is not None and previous[0] != key:
        reports.append((previous[0], {"ticket_id": row["ticket_id"], "v": state["version"],
                                      "gone": True}))
    return reports
