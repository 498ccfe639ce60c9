"""The traffic simulator: deterministic, valid per events.md, and realistic enough to score."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from servicescore.dev.simulate import Engineer, simulate, write_jsonl, write_roster_csv

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = date(2026, 11, 1)
DAYS = 30
WINDOW = (datetime(2026, 11, 1, tzinfo=SHANGHAI), datetime(2026, 12, 1, tzinfo=SHANGHAI))
TOPICS = {"ticket-opened", "ticket-first-response", "ticket-escalated", "ticket-onsite-arrived",
          "ticket-resolved", "ticket-reopened", "survey-submitted", "complaint-filed",
          "assessment-recorded"}
REQUIRED = {
    "ticket-opened": {"ticket_id", "customer_id", "channel", "priority", "category"},
    "ticket-first-response": {"ticket_id", "engineer_id"},
    "ticket-escalated": {"ticket_id", "from_engineer_id"},
    "ticket-onsite-arrived": {"ticket_id", "engineer_id"},
    "ticket-resolved": {"ticket_id", "engineer_id"},
    "ticket-reopened": {"ticket_id"},
    "survey-submitted": {"ticket_id", "csat"},
    "complaint-filed": {"engineer_id", "severity"},
    "assessment-recorded": {"engineer_id", "dimension", "score", "assessor_role"},
}
ID_FIELDS = {"ticket_id", "customer_id", "engineer_id", "team_id", "assignee_id",
             "from_engineer_id", "to_engineer_id", "assessor_id", "category", "product"}
CHANNELS = {"phone", "chat", "email", "web", "onsite"}
PRIORITIES = {"P1", "P2", "P3", "P4"}
DIMENSIONS = {"compliance", "attitude", "collaboration", "training", "knowledge", "review360"}
ASSESSOR_ROLES = {"supervisor", "peer", "subordinate", "customer", "self"}
ROLES = {"field_engineer", "support_specialist", "service_rep"}
PERIOD = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$")


@pytest.fixture(scope="module")
def month():
    return simulate(START, DAYS, 30)


def instant(occurred_at) -> datetime:
    """The wire's ``occurred_at`` (RFC 3339 with offset, or epoch ms) as an aware datetime."""
    if isinstance(occurred_at, int):
        return datetime.fromtimestamp(occurred_at / 1000, UTC)
    parsed = datetime.fromisoformat(occurred_at)
    assert parsed.tzinfo is not None, occurred_at
    return parsed


def of(records, topic):
    return [event for t, event in records if t == topic]


def tickets(records) -> dict[str, list[tuple[datetime, str, dict]]]:
    """ticket_id -> its ticket events (complaints excluded) in event-time order."""
    by_ticket = defaultdict(list)
    for topic, event in records:
        if topic != "complaint-filed" and "ticket_id" in event:
            by_ticket[event["ticket_id"]].append((instant(event["occurred_at"]), topic, event))
    return by_ticket


def test_same_seed_gives_identical_output_and_another_seed_differs():
    first, again = simulate(START, 7, 8, seed=3), simulate(START, 7, 8, seed=3)
    other = simulate(START, 7, 8, seed=4)
    assert first.records == again.records and first.roster == again.roster
    assert jsonl(first.records) == jsonl(again.records)
    assert first.records != other.records


def test_a_month_for_thirty_engineers_has_thousands_of_tickets(month):
    assert 4500 <= len(of(month.records, "ticket-opened")) <= 7000


def test_every_topic_appears(month):
    assert {topic for topic, _ in month.records} == TOPICS


def test_every_event_has_its_required_fields_with_valid_values(month):
    for topic, event in month.records:
        assert REQUIRED[topic] | {"event_id", "occurred_at"} <= event.keys(), (topic, event)
        assert isinstance(event["event_id"], str) and 1 <= len(event["event_id"]) <= 128
        instant(event["occurred_at"])
        for name in ID_FIELDS & event.keys():
            assert isinstance(event[name], str) and 1 <= len(event[name]) <= 128, (name, event)
        for name in {"comment", "reason"} & event.keys():
            assert isinstance(event[name], str) and len(event[name]) <= 4000
        check_values(topic, event)


def check_values(topic: str, event: dict) -> None:
    if topic == "ticket-opened":
        assert event["channel"] in CHANNELS and event["priority"] in PRIORITIES
        assert isinstance(event.get("requires_onsite", False), bool)
    elif topic == "ticket-first-response":
        assert event.get("channel", "phone") in CHANNELS
    elif topic == "survey-submitted":
        assert type(event["csat"]) is int and 1 <= event["csat"] <= 5
        assert "nps" not in event or (type(event["nps"]) is int and 0 <= event["nps"] <= 10)
    elif topic == "complaint-filed":
        assert event["severity"] in {"minor", "major"}
    elif topic == "assessment-recorded":
        assert event["dimension"] in DIMENSIONS and event["assessor_role"] in ASSESSOR_ROLES
        assert type(event["score"]) in (int, float) and 0 <= event["score"] <= 100
        assert "period" not in event or PERIOD.match(event["period"])


def test_occurred_at_comes_in_all_three_wire_forms(month):
    forms = Counter(
        "epoch_ms" if isinstance(at, int) else "utc" if at.endswith("Z") else at[-6:]
        for at in (event["occurred_at"] for _, event in month.records)
    )
    assert set(forms) == {"epoch_ms", "utc", "+08:00"}
    assert forms["+08:00"] > forms["utc"] > 0


def test_event_ids_are_unique_and_records_are_in_event_time_order(month):
    ids = [event["event_id"] for _, event in month.records]
    assert len(ids) == len(set(ids))
    times = [instant(event["occurred_at"]) for _, event in month.records]
    assert times == sorted(times)


def test_ticket_events_refer_to_opened_tickets(month):
    opened = {event["ticket_id"] for event in of(month.records, "ticket-opened")}
    referred = {event["ticket_id"] for _, event in month.records if "ticket_id" in event}
    assert referred <= opened
    assert any("ticket_id" in c for c in of(month.records, "complaint-filed"))
    assert any("ticket_id" not in c for c in of(month.records, "complaint-filed"))


def test_only_follow_ups_spill_past_the_window(month):
    outside = {topic for topic, event in month.records
               if not WINDOW[0] <= instant(event["occurred_at"]) < WINDOW[1]}
    assert outside <= {"ticket-reopened", "survey-submitted"}


def test_about_sixty_percent_of_resolved_tickets_get_a_survey(month):
    resolved = {event["ticket_id"] for event in of(month.records, "ticket-resolved")}
    surveyed = {event["ticket_id"] for event in of(month.records, "survey-submitted")}
    assert 0.5 <= len(surveyed & resolved) / len(resolved) <= 0.7
    surveys = of(month.records, "survey-submitted")
    assert sum("nps" in s for s in surveys) > 0.7 * len(surveys)
    assert any(re.search(r"[\u4e00-\u9fff]", s.get("comment", "")) for s in surveys)


def test_arrivals_peak_in_business_hours(month):
    hours = Counter(instant(e["occurred_at"]).astimezone(SHANGHAI).hour
                    for e in of(month.records, "ticket-opened"))
    business = sum(hours[h] for h in range(9, 18))
    night = sum(hours[h] for h in range(0, 7))
    assert business > 5 * night > 0


def test_weekends_are_quieter_than_weekdays(month):
    days = Counter(instant(e["occurred_at"]).astimezone(SHANGHAI).date()
                   for e in of(month.records, "ticket-opened"))
    weekend = [n for day, n in days.items() if day.weekday() >= 5]
    weekday = [n for day, n in days.items() if day.weekday() < 5]
    assert sum(weekend) / len(weekend) < 0.8 * sum(weekday) / len(weekday)


def test_customers_come_back_with_the_same_category(month):
    seen = defaultdict(list)
    for event in of(month.records, "ticket-opened"):
        seen[event["customer_id"], event["category"]].append(instant(event["occurred_at"]))
    repeats = sum(1 for times in seen.values()
                  for a, b in pairwise(times) if b - a <= timedelta(days=30))
    assert repeats >= 50


def test_some_tickets_are_reopened_and_resolved_again(month):
    multi = [tid for tid, events in tickets(month.records).items()
             if [topic for _, topic, _ in events if topic != "survey-submitted"][-3:]
             == ["ticket-resolved", "ticket-reopened", "ticket-resolved"]]
    assert len(multi) >= 20
    gaps = reopen_gaps(month.records)
    assert any(g <= timedelta(days=7) for g in gaps) and any(g > timedelta(days=7) for g in gaps)


def reopen_gaps(records) -> list[timedelta]:
    gaps = []
    for events in tickets(records).values():
        last_resolved = None
        for at, topic, _ in events:
            if topic == "ticket-resolved":
                last_resolved = at
            elif topic == "ticket-reopened" and last_resolved:
                gaps.append(at - last_resolved)
    return gaps


def test_escalations_name_engineers_tiers_and_reasons(month):
    escalations = of(month.records, "ticket-escalated")
    assert len(escalations) >= 100
    assert all(e["from_engineer_id"] != e.get("to_engineer_id") for e in escalations)
    assert {e.get("tier") for e in escalations} >= {"L2"}
    assert sum("to_engineer_id" in e for e in escalations) > 0.8 * len(escalations)


def test_onsite_visits_are_made_by_field_engineers_for_onsite_tickets(month):
    roles = {e.engineer_id: e.role for e in month.roster}
    opened = of(month.records, "ticket-opened")
    onsite = {e["ticket_id"] for e in opened if e.get("requires_onsite")}
    visits = of(month.records, "ticket-onsite-arrived")
    assert len(visits) >= 100
    assert all(v["ticket_id"] in onsite and roles[v["engineer_id"]] == "field_engineer"
               for v in visits)


def test_first_responses_are_mostly_but_not_always_by_the_assignee(month):
    assignee = {e["ticket_id"]: e.get("assignee_id") for e in of(month.records, "ticket-opened")}
    responses = of(month.records, "ticket-first-response")
    by_assignee = sum(r["engineer_id"] == assignee[r["ticket_id"]] for r in responses)
    assert 0.6 * len(responses) < by_assignee < len(responses)


def test_some_tickets_stay_open_at_the_end(month):
    still_open = 0
    for events in tickets(month.records).values():
        state = "open"
        for at, topic, _ in events:
            if at < WINDOW[1] and topic in ("ticket-resolved", "ticket-reopened"):
                state = "resolved" if topic == "ticket-resolved" else "open"
        still_open += state == "open"
    assert still_open >= 10


def test_assessments_cover_every_dimension_and_assessor_role(month):
    assessments = of(month.records, "assessment-recorded")
    assert {a["dimension"] for a in assessments} == DIMENSIONS
    assert {a["assessor_role"] for a in assessments} == ASSESSOR_ROLES
    assert {a.get("period") for a in assessments} == {"2026-11", None}


def test_roster_has_three_roles_several_teams_and_covers_every_engineer(month):
    roster = {e.engineer_id: e for e in month.roster}
    assert {e.role for e in month.roster} == ROLES
    assert len({e.team_id for e in month.roster}) >= 3
    named = {event[k] for _, event in month.records
             for k in ("engineer_id", "assignee_id", "from_engineer_id", "to_engineer_id")
             if k in event}
    assert named <= roster.keys()


def test_write_jsonl_round_trips(month, tmp_path):
    path = tmp_path / "traffic.jsonl"
    assert write_jsonl(month.records, path) == len(month.records)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [(row["topic"], row["event"]) for row in map(json.loads, lines)] == month.records
    text = path.read_text(encoding="utf-8")
    assert re.search(r"[\u4e00-\u9fff]", text) and "\\u" not in text  # Chinese kept as is


def test_write_roster_csv_has_the_import_header():
    out = io.StringIO()
    write_roster_csv([Engineer("E001", "王伟", "service_rep", "team-north", active=False)], out)
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["engineer_id", "name", "role", "team_id", "active"],
        ["E001", "王伟", "service_rep", "team-north", "false"],
    ]


def test_a_tiny_department_still_works():
    traffic = simulate(START, 2, 3, seed=9, tickets_per_day=20)
    assert {e.role for e in traffic.roster} == ROLES
    assert of(traffic.records, "ticket-opened")


def jsonl(records) -> str:
    out = io.StringIO()
    write_jsonl(records, out)
    return out.getvalue()
