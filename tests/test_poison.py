"""Nothing a producer sends can stop the pipeline (real Kafka, real chDB, `servicescore worker`
and `sink` as processes): a hot ticket past its cap, a message of almost 1 MB, nulls in
optional fields. Each outcome is a dead letter with its reason or a processed event, and a
normal ticket sent after all of them still reaches its KPIs."""

from __future__ import annotations

import hashlib
import json

import pytest

from streams.ticket import ANCILLARY_CAP

T0 = "2026-11-03T09:00:00+08:00"
# Ids of the full 128 characters make each stored event as big as it gets: in the old state
# format 1,200 such escalations passed the broker's 1 MB limit and crash-looped the worker.
HOT_EVENTS = ANCILLARY_CAP + 200


def long_id(prefix: str, n: int) -> str:
    return f"{prefix}-{n:05d}-".ljust(128, "x")


def opened(ticket_id: str, **extra) -> tuple[str, dict]:
    return "ticket-opened", {"event_id": f"{ticket_id}-o", "occurred_at": T0,
                             "ticket_id": ticket_id, "customer_id": "C1", "channel": "phone",
                             "priority": "P2", "category": "printer", **extra}


def resolved(ticket_id: str, engineer: str) -> tuple[str, dict]:
    return "ticket-resolved", {"event_id": f"{ticket_id}-r", "occurred_at":
                               "2026-11-03T10:00:00+08:00", "ticket_id": ticket_id,
                               "engineer_id": engineer}


def hot_ticket(escalations: int) -> list[tuple[str, dict]]:
    return [opened("HOT"), *(("ticket-escalated", {
        "event_id": long_id("esc", n), "occurred_at": 1_793_667_600_000 + n,
        "ticket_id": "HOT", "from_engineer_id": long_id("E", n),
        "to_engineer_id": long_id("T", n)}) for n in range(escalations))]


HUGE = b'{"event_id": "huge", "comment": "' + b"z" * 900_000 + b'"}'


@pytest.fixture(scope="module")
def poisoned(kafka_bootstrap, tmp_path_factory):
    from tests.plugins.pipeline import Pipeline

    folder = tmp_path_factory.mktemp("poison")
    p = Pipeline(kafka_bootstrap, folder)
    p.env["SERVICESCORE_API_TOKEN"] = "poison-test"
    p.cli("topics", "create")
    p.start("worker")
    p.start("sink")
    records = [*hot_ticket(HOT_EVENTS - 1),
               ("survey-submitted", HUGE.decode()),
               opened("NULLS", requires_onsite=None, team_id=None, assignee_id=None),
               resolved("NULLS", "E-null"),
               opened("AFTER"), resolved("AFTER", "E-after"),
               resolved("WAITING", "E-wait")]  # its ticket-opened never comes
    lines = [json.dumps({"topic": t, "event": e}) for t, e in records]
    (folder / "events.jsonl").write_text("\n".join(lines))
    p.cli("replay", str(folder / "events.jsonl"))
    try:
        p.wait_idle()
        yield p
    finally:
        p.stop_all()


def letters(p) -> list[dict]:
    return json.loads(p.cli("dlq", "list", "--limit", "10000", "--format", "json").stdout)


def test_a_ticket_past_its_cap_is_refused_with_the_reason_and_the_rest_goes_on(poisoned):
    capped = [d for d in letters(poisoned) if d["topic"] == "ticket-escalated"]
    # The cap's worth of escalations is taken, the rest refused; the opened, whenever it is
    # read, is not (the worker may read the escalations' topic first).
    assert len(capped) == HOT_EVENTS - 1 - ANCILLARY_CAP
    assert all("cap of 1000 escalations" in d["reason"] for d in capped)
    assert not [d for d in letters(poisoned) if d["topic"] == "ticket-opened"]
    kpis = poisoned.json("kpis", "--from", "2026-11-01", "--to", "2026-12-01")
    escalations = sum(row["escalations"] for row in kpis)
    assert escalations == ANCILLARY_CAP
    assert {"E-after", "E-null"} <= {row["engineer_id"] for row in kpis}


def test_a_message_of_almost_a_megabyte_has_a_dead_letter_with_length_and_hash(poisoned):
    (letter,) = [d for d in letters(poisoned) if d["topic"] == "survey-submitted"]
    assert "exceeds the 65536 byte limit" in letter["reason"]
    assert letter["raw_bytes"] == len(HUGE) and letter["truncated"] is True
    assert letter["raw_sha256"] == hashlib.sha256(HUGE).hexdigest()


def test_a_truncated_dead_letter_is_never_republished(poisoned):
    done = poisoned.cli("dlq", "replay", "--topic", "survey-submitted")
    assert "republished 0 dead letter" in done.stdout
    (letter,) = [d for d in letters(poisoned) if d["topic"] == "survey-submitted"]
    assert letter["replayed_at"] is None


def test_null_optional_fields_are_processed_like_absent_ones(poisoned):
    rows = poisoned.json("tickets", "--from", "2026-11-01", "--to", "2026-12-01",
                         "--engineer", "E-null")
    assert [r["ticket_id"] for r in rows] == ["NULLS"]
    assert not [d for d in letters(poisoned) if d["topic"] == "ticket-opened"]


def test_an_event_waiting_for_its_opened_is_listed_with_its_age(poisoned):
    (row,) = json.loads(poisoned.cli("held", "--format", "json").stdout)
    assert (row["ticket_id"], row["event_id"], row["event_kind"]) == (
        "WAITING", "WAITING-r", "resolved")
    assert row["age_s"] >= 0 and row["held_since"].endswith("+08:00")


def test_the_facts_agree_with_their_tickets(poisoned):
    assert poisoned.json("check") == {"inconsistent_tickets": 0, "examples": []}
