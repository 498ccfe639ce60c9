"""End to end on the real Kafka and the embedded ClickHouse: the KPIs equal the independent
oracle (tests/oracle.py) for shuffled events with duplicates and bad messages, with and without
the worker crashed after a count of events and the sink killed (SIGKILL) between the two halves
of the traffic. The KPI rules themselves are tested without Kafka in tests/contract/."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import date

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from schemas.events import EVENT_TOPICS
from schemas.period import parse_instant
from servicescore.core.faults import EXIT_CODE
from servicescore.dev.simulate import simulate, write_jsonl, write_roster_csv
from servicescore.kafka.client import client_options
from servicescore.kafka.topics import sink_group
from tests import oracle

TZ = "Asia/Shanghai"
CRASH_AFTER = 2000  # lifecycle steps before the worker is crashed
WINDOWS = [
    ("2026-11-01", "2026-12-01"),
    ("2026-11-08", "2026-11-15"),
    ("2026-11-10T13:37:00+08:00", "2026-11-20T08:00:00+08:00"),
    ("2026-10-01", "2027-01-01"),
]


def bad_messages(records: list, rng: random.Random, count: int) -> list[tuple[str, object]]:
    """Every class of bad input, each with a fresh event_id so none can shadow a real event."""
    def variant(n: int) -> tuple[str, object]:
        topic, event = rng.choice(records)
        event = {**event, "event_id": f"bad-{n}"}
        kind = n % 6
        if kind == 0:
            return topic, f'{{"event_id": "bad-{n}", "occurred_at": '  # not JSON
        if kind == 1:
            return topic, {**event, "occurred_at": "2026-11-05T10:00:00"}  # no offset
        if kind == 2:
            return "survey-submitted", {**event, "ticket_id": "T-x", "csat": 9}  # out of range
        if kind == 3:
            return topic, {k: v for k, v in event.items() if k != "occurred_at"}  # missing
        if kind == 4:
            return "ticket-opened", {**event, "ticket_id": 12345}  # wrong type
        return topic, "[1, 2, 3]"  # not an object
    return [variant(n) for n in range(count)]


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """30 days, 30 engineers (over 5,000 tickets); delivered shuffled with about 6 %
    duplicates and 1.2 % bad messages."""
    sim = simulate(date(2026, 11, 1), 30, 30, seed=11, timezone=TZ)
    rng = random.Random(11)
    records = list(sim.records)
    duplicates = [rng.choice(records) for _ in range(len(records) * 6 // 100)]
    bad = bad_messages(records, rng, len(records) * 12 // 1000)
    deliveries = records + duplicates + bad
    rng.shuffle(deliveries)
    folder = tmp_path_factory.mktemp("traffic")
    half = len(deliveries) // 2
    write_jsonl(deliveries[:half], folder / "part1.jsonl")
    write_jsonl(deliveries[half:], folder / "part2.jsonl")
    write_roster_csv(sim.roster, folder / "roster.csv")
    tickets = sum(1 for t, _ in records if t == "ticket-opened")
    assert tickets >= 5000 and len(sim.roster) >= 30
    assert {t for t, _ in records} == set(EVENT_TOPICS)
    return {"folder": folder, "deliveries": deliveries, "bad": len(bad),
            "roster": {e.engineer_id: e.team_id for e in sim.roster}}


def expected(traffic, start: str, end: str, group: str = "engineer") -> dict:
    lo, hi = parse_instant(start, TZ), parse_instant(end, TZ)
    return oracle.compute_kpis(traffic["deliveries"], lo, hi, roster=traffic["roster"],
                               group=group)


def mismatches(want: dict, rows: list[dict], key: str) -> list[str]:
    got = {row[key]: row for row in rows}
    problems = [f"{k}: missing or extra" for k in set(want) ^ set(got)]
    for k, kpis in want.items():
        for field, value in kpis.items():
            seen = got.get(k, {}).get(field)
            if value is None or seen is None:
                same = value is None and seen is None
            else:
                same = abs(float(value) - float(seen)) <= 1e-6 * max(1.0, abs(float(value)))
            if not same:
                problems.append(f"{k}.{field}: oracle {value!r}, pipeline {seen!r}")
    return problems


def assert_matches_oracle(pipeline, traffic) -> None:
    for start, end in WINDOWS:
        rows = pipeline.json("kpis", "--from", start, "--to", end)
        problems = mismatches(expected(traffic, start, end), rows, "engineer_id")
        assert not problems, f"window {start}..{end}: " + "; ".join(problems[:20])
    start, end = WINDOWS[0]
    rows = pipeline.json("kpis", "--from", start, "--to", end, "--group", "team")
    problems = mismatches(expected(traffic, start, end, "team"), rows, "team_id")
    assert not problems, "teams: " + "; ".join(problems[:20])


def assert_dead_letters(pipeline, traffic) -> None:
    letters = json.loads(pipeline.cli("dlq", "list", "--limit", "10000", "--format",
                                      "json").stdout)
    assert len(letters) == traffic["bad"]
    assert all(letter["reason"] for letter in letters)


async def members(settings, group: str) -> list[list]:
    """The partitions assigned to each member of a consumer group, as the broker says."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (_error, _group, _state, _protocol_type, _protocol, found, *_rest) = described.groups[0]
    # A member is (id, client, host, metadata, assignment).
    return [ConsumerProtocolMemberAssignment.decode(member[4]).partitions() for member in found]


def started(pipeline_factory, traffic, name: str, *parts: str):
    """Topics, roster and the ``parts`` (worker, sink) running: ready for traffic."""
    p = pipeline_factory(name)
    p.cli("topics", "create")
    p.cli("roster", "import", str(traffic["folder"] / "roster.csv"))
    for part in parts:
        p.start(part)
    return p


def test_kpis_equal_the_oracle(pipeline_factory, traffic):
    p = started(pipeline_factory, traffic, "clean", "worker", "sink")
    p.cli("replay", str(traffic["folder"] / "part1.jsonl"), str(traffic["folder"] / "part2.jsonl"))
    p.wait_idle()
    p.stop_all()
    assert_matches_oracle(p, traffic)
    assert_dead_letters(p, traffic)


def test_kpis_survive_a_crashed_worker_and_a_killed_sink(pipeline_factory, traffic):
    """Crashes placed by counts of processed events and by the traffic published so far, not
    by timing: the same on any machine, at any pipeline speed."""
    p = started(pipeline_factory, traffic, "crash", "sink")
    p.cli("replay", str(traffic["folder"] / "part1.jsonl"))
    # Dead (os._exit: no flush, no commit) after 2,000 ticket states of the first half's
    # ~11,000 ticket events, between writing a state and sending its facts.
    p.start("worker", {"SERVICESCORE_CRASH_AT": f"lifecycle:state:{CRASH_AFTER}"})
    assert p.wait_exit("worker") == EXIT_CODE, "the worker did not crash"
    p.start("worker")
    p.wait_committed("sink")
    p.kill("sink")  # SIGKILL after some commits; the second half is not published yet
    p.cli("replay", str(traffic["folder"] / "part2.jsonl"))
    p.start("sink")
    p.wait_idle()
    p.stop_all()
    assert_matches_oracle(p, traffic)
    assert_dead_letters(p, traffic)


def test_two_workers_and_two_sinks_in_one_group_share_the_work_and_lose_nothing(
        pipeline_factory, traffic):
    """Scale-out: a second worker joins the group while the first is busy; the partitions (and
    their ticket states) are split between them through a rebalance, and the KPIs still equal
    the oracle: nothing lost, nothing counted twice. Two sinks share the facts' group (in one
    process: the embedded engine is one process per folder; a rebalance between them during
    an outage is in test_sink.py)."""
    p = pipeline_factory("scale-out")
    p.cli("topics", "create")
    p.cli("roster", "import", str(traffic["folder"] / "roster.csv"))
    p.start("worker")
    p.start("sink", {"SERVICESCORE_SINK_CONSUMERS": "2"})
    p.cli("replay", str(traffic["folder"] / "part1.jsonl"))
    second = p.folder / "second"
    p.start("worker", {"SERVICESCORE_DATA_DIR": str(second), "SERVICESCORE_METRICS": ""},
            name="worker-2")
    p.cli("replay", str(traffic["folder"] / "part2.jsonl"))
    p.wait_idle()
    sinks = asyncio.run(members(p.settings, sink_group(p.settings.app_id)))
    p.stop_all()
    assert len(sinks) == 2 and all(sinks), f"both sinks own partitions: {sinks}"
    assert_matches_oracle(p, traffic)
    assert_dead_letters(p, traffic)
    for folder in (p.folder, second):  # both took part: each holds ticket states
        stores = list((folder / "worker").glob("*/v1/tables/ticket-state-*.db"))
        assert stores, f"the worker of {folder} kept no ticket state"
