"""`servicescore check`: a ticket's row and its facts agree (servicescore/invariants.py)."""

from schemas.calendar import WorkCalendar
from schemas.facts import FACT_TABLES
from servicescore.queries.invariants import inconsistent_tickets
from streams import lifecycle, ticket

T = 1_793_548_800_000
EVENTS = [
    {"k": "opened", "id": "o", "t": T, "ticket_id": "T1", "customer_id": "C", "category": "pc",
     "priority": "P2", "channel": "phone", "team_id": None, "assignee_id": None,
     "requires_onsite": False},
    {"k": "escalated", "id": "e", "t": T + 1, "ticket_id": "T1", "from_engineer_id": "E1",
     "to_engineer_id": None},
    {"k": "resolved", "id": "r", "t": T + 2, "ticket_id": "T1", "engineer_id": "E2"},
    {"k": "survey", "id": "s", "t": T + 3, "ticket_id": "T1", "csat": 5, "nps": None},
    {"k": "reopened", "id": "x", "t": T + 31 * 86_400_000, "ticket_id": "T1"},  # no flag moves
]


def facts_of(events) -> list[dict]:
    state, sent = ticket.new_state(), []
    for event in events:
        sent += lifecycle.apply(state, event, WorkCalendar()).facts
    return sent


def store(storage, facts) -> None:
    for kind in {f["kind"] for f in facts}:
        spec = FACT_TABLES[kind]
        storage.insert(spec.table, [spec.row(f) for f in facts if f["kind"] == kind],
                       spec.columns)


def test_every_fact_sent_is_consistent(storage):
    store(storage, facts_of(EVENTS))
    assert inconsistent_tickets(storage) == {"inconsistent_tickets": 0, "examples": []}


def test_a_lost_message_shows_once_the_ticket_changes_again(storage):
    state, kept = ticket.new_state(), []
    for n, event in enumerate(EVENTS):
        out = lifecycle.apply(state, event, WorkCalendar()).facts
        if n != 2:  # the resolution's message is lost
            kept += out
    store(storage, kept)
    found = inconsistent_tickets(storage)
    assert found["inconsistent_tickets"] == 1
    (example,) = found["examples"]
    assert (example["ticket_id"], example["claimed_resolutions"],
            example["resolution_facts"]) == ("T1", 1, 0)


def test_the_service_exposes_the_count_as_a_metric(storage):
    import asyncio

    from servicescore.app.service import watch_facts
    from servicescore.core.metrics import Metrics

    class Reader:  # the service's LocalReader, on this test's database
        def check(self):
            return inconsistent_tickets(storage)

        def held_summary(self):
            return {"held_events": 0}

    state, kept = ticket.new_state(), []
    for n, event in enumerate(EVENTS):
        out = lifecycle.apply(state, event, WorkCalendar()).facts
        kept += [] if n == 2 else out
    store(storage, kept)
    metrics = Metrics()

    async def one_round():
        task = asyncio.create_task(watch_facts(Reader(), metrics, every_s=60))
        while metrics.registry.get_sample_value("servicescore_inconsistent_tickets") != 1:
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(asyncio.wait_for(one_round(), 30))
