"""Repeat faults through new tickets: state keyed by (customer_id, category), not a scan.

Each ticket reports to its (customer, category) key its opened time and its resolutions. The
key's state answers, for every resolution, whether another ticket of the same customer and
category was opened within 7 / 30 days after it (kpis.md, repeat_rate_*).

State: ``{"tickets": {ticket_id: {"v", "opened", "res": [[episode, resolved_ms], ...]}
or {"v", "gone": true} for a ticket that moved to another key},
"emitted": {fact key: [f7, f30]}, "seq": n}``.
"""

from __future__ import annotations

from bisect import bisect_left

from streams.facts import fact_key
from streams.resolution import DAY_MS


def index_key(customer_id: str, category: str) -> str:
    return f"{customer_id}\x1f{category}"


def new_index() -> dict:
    return {"tickets": {}, "emitted": {}, "seq": 0}


def update(index: dict, report: dict) -> bool:
    """Apply one ticket's report; False when it is not newer than what the index holds (a
    redelivery, or a stale report): the caller then resends every flag, in case the sends of
    the first delivery were lost in a crash after the state was saved."""
    tickets = index["tickets"]
    held = tickets.get(report["ticket_id"])
    if held is not None and report["v"] <= held["v"]:
        return False
    if report.get("gone"):
        # Keep the version: an older report arriving later must not bring the ticket back.
        tickets[report["ticket_id"]] = {"v": report["v"], "gone": True}
    else:
        tickets[report["ticket_id"]] = {"v": report["v"], "opened": report["opened"],
                                        "res": report["res"]}
    index["seq"] += 1
    return True


def flags(index: dict) -> dict[str, dict]:
    """The repeat fact of every resolution in the key (by fact key)."""
    present = {tid: t for tid, t in index["tickets"].items() if not t.get("gone")}
    opened = sorted((t["opened"], tid) for tid, t in present.items())
    facts = {}
    for tid, held in present.items():
        for episode, resolved_ms in held["res"]:
            fact = {
                "kind": "repeat", "ticket_id": tid, "episode": episode,
                "new_ticket_7d": _new_ticket(opened, tid, resolved_ms, 7),
                "new_ticket_30d": _new_ticket(opened, tid, resolved_ms, 30),
            }
            facts[fact_key(fact)] = fact
    return facts


def changes(index: dict, resend_all: bool = False) -> list[dict]:
    """Repeat facts whose flags changed (all of them with ``resend_all``), versioned so that a
    later state always wins: the ticket's own version first, then the key's sequence."""
    out = []
    current = flags(index)
    emitted = index["emitted"]
    for key, fact in current.items():
        pair = [fact["new_ticket_7d"], fact["new_ticket_30d"]]
        if resend_all or emitted.get(key) != pair:
            emitted[key] = pair
            version = (index["tickets"][fact["ticket_id"]]["v"] << 32) | index["seq"]
            out.append({**fact, "v": version, "del": 0})
    for key in [k for k in emitted if k not in current]:
        del emitted[key]  # the ticket moved to another key, which now owns its flags
    return out


def _new_ticket(opened: list[tuple[int, str]], own: str, resolved_ms: int, days: int) -> bool:
    """Is there another ticket opened in [resolved, resolved + days]?"""
    i = bisect_left(opened, (resolved_ms, ""))
    limit = resolved_ms + days * DAY_MS
    while i < len(opened) and opened[i][0] <= limit:
        if opened[i][1] != own:
            return True
        i += 1
    return False
