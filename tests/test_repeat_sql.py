"""Repeats through a new ticket of the same customer and category are computed by ClickHouse
from the facts (sql/004, view resolution_facts; its current form sql/008): any set of tickets
gives exactly the flags of kpis.md, computed here by brute force."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.facts import FACT_TABLES

DAY = 86_400_000
BASE = 1_793_548_800_000
# Ties and both sides of the 7 and 30 day bounds come up often.
OFFSETS = (0, 1, DAY, 7 * DAY - 1, 7 * DAY, 7 * DAY + 1, 30 * DAY, 30 * DAY + 1, -DAY)
offsets = st.sampled_from(OFFSETS)


@st.composite
def tickets(draw):
    """ticket_id -> (customer, category, opened, [resolved times]) for a few keys."""
    found = {}
    for n in range(draw(st.integers(1, 6))):
        opened = BASE + draw(offsets) + draw(st.sampled_from((0, DAY, 3 * DAY)))
        resolutions = draw(st.lists(offsets.map(lambda o, t=opened: t + o), max_size=3))
        key = draw(st.sampled_from((("C1", "printer"), ("C1", "pc"), ("C2", "printer"))))
        found[f"T{n}"] = (*key, opened, resolutions)
    return found


def expected(found: dict) -> dict:
    flags = {}
    for tid, (customer, category, _, resolutions) in found.items():
        for episode, resolved in enumerate(resolutions, start=1):
            later = [o - resolved for other, (c, k, o, _) in found.items()
                     if other != tid and (c, k) == (customer, category)]
            flags[(tid, episode)] = (any(0 <= d <= 7 * DAY for d in later),
                                     any(0 <= d <= 30 * DAY for d in later))
    return flags


def store(storage, found: dict) -> None:
    rows = {"ticket": [], "resolution": []}
    for tid, (customer, category, opened, resolutions) in found.items():
        rows["ticket"].append({
            "ticket_id": tid, "customer_id": customer, "category": category, "priority": "P2",
            "channel": "phone", "requires_onsite": False, "opened_at": opened, "status": "open",
            "episodes": 1, "episode_start": opened, "escalations": 0, "v": 1, "del": 0})
        for episode, resolved in enumerate(resolutions, start=1):
            rows["resolution"].append({
                "ticket_id": tid, "episode": episode, "engineer_id": "E1",
                "resolved_at": resolved, "episode_start": opened, "aht_s": 0.0,
                "aht_bh_s": 0.0, "escalated": False, "fcr": False, "reopened_7d": False,
                "reopened_30d": False, "customer_id": customer, "category": category,
                "priority": "P2", "v": 1, "del": 0})
    for kind, facts in rows.items():
        spec = FACT_TABLES[kind]
        storage.command(f"TRUNCATE TABLE {spec.table}")
        if facts:
            storage.insert(spec.table, [spec.row(f) for f in facts], spec.columns)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(found=tickets())
def test_new_ticket_flags_equal_the_brute_force_reading(storage, found):
    store(storage, found)
    rows = storage.rows("SELECT ticket_id, episode, new_ticket_7d, new_ticket_30d, repeat_7d, "
                        "repeat_30d FROM resolution_facts")
    got = {(r["ticket_id"], r["episode"]): (r["new_ticket_7d"], r["new_ticket_30d"])
           for r in rows}
    assert got == expected(found)
    assert all((r["repeat_7d"], r["repeat_30d"]) == (r["new_ticket_7d"], r["new_ticket_30d"])
               for r in rows)  # no reopens here: a repeat is a new ticket
    # A window's view reads only the tickets of [from, to + 30 days]: the same flags for the
    # window's resolutions (a window ending between the tickets' times cuts some keys' range).
    window = {"from_ms": BASE + DAY, "to_ms": BASE + 7 * DAY}
    rows = storage.rows("SELECT ticket_id, episode, new_ticket_7d, new_ticket_30d FROM "
                        "resolution_facts_between(from_ms = {from_ms:Int64}, "
                        "to_ms = {to_ms:Int64})", window)
    resolved = {(tid, episode): at for tid, (*_, times) in found.items()
                for episode, at in enumerate(times, start=1)}
    assert {(r["ticket_id"], r["episode"]): (r["new_ticket_7d"], r["new_ticket_30d"])
            for r in rows} == {key: flags for key, flags in expected(found).items()
                               if window["from_ms"] <= resolved[key] < window["to_ms"]}
