"""Ticket states retire by event time (spec README, "Allowed lateness"; streams/retirement.py).

The rules at their bounds as pure functions, then the worker on the real broker with an allowed
lateness of one day: events delivered across the bound are taken while their ticket is live,
dead-lettered ``too_late`` once it is retired, and nothing is dropped silently.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from schemas.period import parse_instant
from servicescore.core.errors import ConfigError
from servicescore.core.settings import duration_ms, load_settings
from streams import retirement, ticket

DAY = retirement.DAY_MS
LATENESS = 60 * DAY
PARTITIONS = 4  # the test pipeline's (tests/plugins/pipeline.py)
NOW = 1_790_000_000_000  # the wall clock of the pure tests


def state_with_last(last_ms: int) -> dict:
    state = ticket.new_state("T1")
    ticket.merge(state, {"k": "opened", "id": "T1-o", "t": last_ms - 1000, "ticket_id": "T1",
                         "customer_id": "C", "category": "x", "priority": "P2",
                         "channel": "phone", "team_id": None, "assignee_id": None,
                         "requires_onsite": False})
    ticket.merge(state, {"k": "resolved", "id": "T1-r", "t": last_ms, "ticket_id": "T1",
                         "engineer_id": "E1"})
    return state


def test_a_state_retires_only_after_the_look_ahead_and_the_lateness_have_passed():
    last = NOW - 200 * DAY
    state = state_with_last(last)
    bound = last + retirement.LOOK_AHEAD_MS + LATENESS
    assert retirement.retire_at_ms(state, LATENESS) == bound
    assert not retirement.due(state, bound, LATENESS)
    assert retirement.due(state, bound + 1, LATENESS)


def test_the_clock_ignores_a_time_more_than_a_day_ahead_of_the_wall_clock():
    clock = retirement.advance(0, NOW - DAY, NOW)
    assert clock == NOW - DAY
    assert retirement.advance(clock, NOW + DAY, NOW) == NOW + DAY  # a day ahead: still time
    assert retirement.advance(clock, NOW + DAY + 1, NOW) == clock  # a bad clock: ignored
    assert retirement.advance(clock, NOW - 2 * DAY, NOW) == clock  # never goes back


def test_an_input_read_ahead_does_not_carry_the_clock_past_one_still_behind():
    wm = retirement.watermark
    # (highest time routed, records still unread) per source partition
    assert wm(0, [(NOW, True), (NOW - 90 * DAY, True)]) == NOW - 90 * DAY
    assert wm(0, [(NOW, False), (NOW - 90 * DAY, True)]) == NOW - 90 * DAY
    assert wm(0, [(NOW, False), (NOW - 90 * DAY, False)]) == NOW  # caught up: the highest
    assert wm(0, [(NOW, True), (None, True)]) == 0  # behind and not read yet: holds
    assert wm(0, [(NOW, False), (None, False)]) == NOW  # an empty partition holds nothing
    assert wm(NOW, [(NOW - DAY, True)]) == NOW  # never goes back


def test_the_lifecycle_clock_is_the_lowest_live_intake_watermark():
    clocks = retirement.Watermarks(live_s=60)
    assert clocks.hear("a", NOW - 10 * DAY, now_s=0) == NOW - 10 * DAY
    assert clocks.hear("b", NOW - 40 * DAY, now_s=1) == NOW - 10 * DAY  # never goes back
    assert clocks.hear("a", NOW, now_s=2) == NOW - 10 * DAY  # b is behind: it holds
    assert clocks.hear("b", NOW - 5 * DAY, now_s=3) == NOW - 5 * DAY
    # b silent for over a minute (stopped, or nothing to send): a alone counts
    assert clocks.hear("a", NOW + DAY, now_s=70) == NOW + DAY


def test_an_event_of_a_ticket_without_state_is_too_late_only_past_the_lateness():
    clock = NOW
    assert not retirement.too_late(clock - LATENESS, clock, LATENESS)
    assert retirement.too_late(clock - LATENESS - 1, clock, LATENESS)
    assert not retirement.too_late(0, 0, LATENESS)  # nothing processed yet: no event time
    reason = retirement.too_late_reason("T9", clock - 61 * DAY, clock, LATENESS)
    assert reason.startswith("too_late: ticket T9") and "61.0 days" in reason


def test_the_index_hands_out_a_key_once_its_whole_day_has_passed():
    index = retirement.RetirementIndex()
    index.add(1, b"lost", 5 * DAY)  # an unknown partition is not indexed
    assert index.pop_due(1, 10 * DAY) == set()
    index.start(1)
    index.add(1, b"a", 5 * DAY + 10)
    index.add(1, b"b", 6 * DAY + 10)
    assert index.pop_due(1, 6 * DAY - 1) == set()
    assert index.pop_due(1, 6 * DAY) == {b"a"}
    assert index.pop_due(1, 6 * DAY) == set()
    index.forget([1])
    assert not index.known(1)


def test_a_retired_held_event_keeps_one_dead_letter_identity():
    assert retirement.letter_offset("E-1") == retirement.letter_offset("E-1")
    assert retirement.letter_offset("E-1") != retirement.letter_offset("E-2")
    assert retirement.letter_offset("E-1") >= 0


@pytest.mark.parametrize(("text", "ms"), [("60d", 60 * DAY), ("36h", 36 * 3_600_000),
                                          ("90m", 90 * 60_000), ("30s", 30_000), ("2", 2 * DAY),
                                          ("1.5d", 36 * 3_600_000)])
def test_the_allowed_lateness_setting_reads_days_hours_minutes_seconds(text, ms):
    assert duration_ms(text) == ms
    assert load_settings(allowed_lateness=text).allowed_lateness == text


def test_a_bad_allowed_lateness_is_refused_naming_it():
    with pytest.raises(ConfigError, match="^SERVICESCORE_ALLOWED_LATENESS: 'two months' is not a "
                                          "duration"):
        load_settings(allowed_lateness="two months")


# --- the worker on the real broker ----------------------------------------------------------

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def at(delta: timedelta) -> str:
    return (T0 + delta).isoformat()


def ticket_events(tid: str, start: timedelta, engineer: str) -> list[tuple[str, dict]]:
    return [
        ("ticket-opened", {"event_id": f"{tid}-o", "occurred_at": at(start), "ticket_id": tid,
                           "customer_id": f"C-{tid}", "channel": "phone", "priority": "P2",
                           "category": "printer", "assignee_id": engineer}),
        ("ticket-first-response", {"event_id": f"{tid}-f", "ticket_id": tid,
                                   "occurred_at": at(start + timedelta(minutes=10)),
                                   "engineer_id": engineer}),
        ("ticket-resolved", {"event_id": f"{tid}-r", "ticket_id": tid,
                             "occurred_at": at(start + timedelta(hours=2)),
                             "engineer_id": engineer}),
    ]


def survey(tid: str, when: timedelta, csat: int) -> tuple[str, dict]:
    return ("survey-submitted", {"event_id": f"{tid}-s", "ticket_id": tid, "occurred_at": at(when),
                                 "csat": csat})


def spread(prefix: str, start: timedelta) -> list[tuple[str, dict]]:
    """On-time tickets reaching every partition: a partition retires its due states when its
    next message comes (as traffic does all the time)."""
    from streams.app import ticket_partition

    tickets = [f"{prefix}-{n:02d}" for n in range(40)]
    assert {ticket_partition(t, PARTITIONS) for t in tickets} == set(range(PARTITIONS))
    return [e for n, t in enumerate(tickets)
            for e in ticket_events(t, start + timedelta(minutes=n), "E4")]


@pytest.fixture(scope="module")
def across_the_bound(kafka_bootstrap, tmp_path_factory):
    """Rounds, each processed before the next is published, with an allowed lateness of 2 days:
    1. OLD (last event T0+2h), LIVE (last event T0+1d+2h) and WAITING (a first response whose
       ticket-opened never comes) at the start of September;
    2. and 3. NEW tickets 33 days later: the clock passes OLD's and WAITING's bound (last event
       + 30 days + 2 days) but not LIVE's, and every partition sees a message;
    4. late surveys of OLD and LIVE, a reopen of OLD beyond its look-ahead, and a ticket LATE
       whose events are over three days behind the clock.
    The worker restarts after round 1: it finds what may retire in its store, its clock anew."""
    from tests.plugins.pipeline import Pipeline

    folder = tmp_path_factory.mktemp("retirement")
    p = Pipeline(kafka_bootstrap, folder)
    p.env["SERVICESCORE_ALLOWED_LATENESS"] = "2d"
    p.cli("topics", "create")
    p.start("worker")
    p.start("sink")
    rounds = [
        [*ticket_events("OLD", timedelta(0), "E1"),
         *ticket_events("LIVE", timedelta(days=1), "E2"),
         ("ticket-first-response", {"event_id": "WAITING-f", "ticket_id": "WAITING",
                                    "occurred_at": at(timedelta(hours=1)), "engineer_id": "E3"})],
        spread("NEW", timedelta(days=33)),
        spread("NEXT", timedelta(days=33, hours=1)),
        [survey("OLD", timedelta(hours=3), 1),
         survey("LIVE", timedelta(days=1, hours=3), 5),
         ("ticket-reopened", {"event_id": "OLD-re", "ticket_id": "OLD",
                              "occurred_at": at(timedelta(days=33, hours=1))}),
         *ticket_events("LATE", timedelta(days=30), "E5")],
    ]
    try:
        for n, records in enumerate(rounds):
            path = folder / f"round{n}.jsonl"
            path.write_text("\n".join(json.dumps({"topic": t, "event": e}) for t, e in records))
            p.cli("replay", str(path))
            p.wait_idle()
            if n == 0:  # the states of round 1 are found in the store by a restarted worker
                p.stop("worker")
                p.start("worker")
        yield p
    finally:
        p.stop_all()


def letters(p) -> list[tuple[str, str]]:
    """(source topic, reason) of each dead letter."""
    rows = json.loads(p.cli("dlq", "list", "--limit", "1000", "--format", "json").stdout)
    return [(row["topic"], row["reason"]) for row in rows]


def of_ticket(p, tid: str) -> list[tuple[str, str]]:
    return [(topic, reason) for topic, reason in letters(p) if f"ticket {tid} " in reason]


def kpis(p, engineer: str) -> dict:
    rows = p.json("kpis", "--from", "2026-08-01T00:00:00Z", "--to", "2026-12-01T00:00:00Z",
                  "--engineer", engineer)
    return rows[0] if rows else {}


def test_an_event_of_a_retired_ticket_is_a_too_late_dead_letter(across_the_bound):
    ((topic, reason),) = of_ticket(across_the_bound, "OLD")
    assert topic == "survey-submitted" and reason.startswith("too_late: ticket OLD has no live")
    assert kpis(across_the_bound, "E1")["surveys"] == 0  # the survey did not count
    assert kpis(across_the_bound, "E1")["resolutions"] == 1  # what was derived stays


def test_a_held_event_whose_ticket_retires_becomes_a_dead_letter(across_the_bound):
    ((topic, reason),) = of_ticket(across_the_bound, "WAITING")
    assert topic == "ticket-first-response"
    assert reason.startswith("too_late: ticket WAITING retired before its ticket-opened arrived")
    held = json.loads(across_the_bound.cli("held", "--format", "json").stdout)
    assert "WAITING" not in {row["ticket_id"] for row in held}


def test_a_late_event_of_a_live_ticket_is_taken(across_the_bound):
    # 30 days behind the clock, far past the lateness, but its ticket is still live: exact.
    assert of_ticket(across_the_bound, "LIVE") == []
    assert kpis(across_the_bound, "E2")["csat_avg"] == 5


def test_events_of_a_new_ticket_later_than_the_lateness_are_dead_lettered(across_the_bound):
    found = of_ticket(across_the_bound, "LATE")
    assert sorted(topic for topic, _ in found) == [
        "ticket-first-response", "ticket-opened", "ticket-resolved"]
    assert all(reason.startswith("too_late: ticket LATE") for _, reason in found)
    done = across_the_bound.cli("kpis", "--period", "2026", "--engineer", "E5", check=False)
    assert "unknown engineer 'E5'" in done.stderr  # nothing of LATE was counted


def test_an_on_time_event_beyond_the_look_ahead_of_a_retired_ticket_is_held(across_the_bound):
    # OLD's state is gone: its reopen 33 days on waits for an opened, listed, not lost.
    held = json.loads(across_the_bound.cli("held", "--format", "json").stdout)
    assert ("OLD", "OLD-re") in {(row["ticket_id"], row["event_id"]) for row in held}


def test_tickets_on_time_are_untouched(across_the_bound):
    assert kpis(across_the_bound, "E4")["resolutions"] == 80
    assert not [reason for _, reason in letters(across_the_bound) if "ticket NE" in reason]


# --- a backfill: months of history in time order --------------------------------------------

def test_a_backfill_of_months_in_time_order_loses_nothing_and_retires(kafka_bootstrap,
                                                                      tmp_path):
    """Four months replayed at once, each topic in time order, with the default lateness of 60
    days: the intake reads the topics at different speeds (a sparse one months ahead of a busy
    one), and none of that is too late. The clock is a watermark over the inputs, so no event
    is dead-lettered, the KPIs equal the oracle, and the first month's tickets still retire
    once every input has passed them and traffic goes on."""
    import urllib.request

    from servicescore.dev.broker import free_port
    from servicescore.dev.simulate import simulate, write_jsonl, write_roster_csv
    from tests import oracle
    from tests.plugins.pipeline import Pipeline
    from tests.test_pipeline import mismatches

    tz = "Asia/Shanghai"
    sim = simulate(date(2026, 6, 1), 120, 6, seed=3, timezone=tz)
    write_jsonl(sim.records, tmp_path / "history.jsonl")
    write_roster_csv(sim.roster, tmp_path / "roster.csv")
    metrics = f"127.0.0.1:{free_port()}"
    p = Pipeline(kafka_bootstrap, tmp_path)
    p.env["SERVICESCORE_TIMEZONE"] = tz
    p.cli("topics", "create")
    p.cli("roster", "import", str(tmp_path / "roster.csv"))
    p.cli("replay", str(tmp_path / "history.jsonl"))  # all of it before the worker starts
    p.start("worker", {"SERVICESCORE_METRICS": metrics})
    p.start("sink")
    try:
        p.wait_idle()
        # Live traffic goes on, reaching every partition: a partition retires its due states
        # when its next message comes.
        live = tmp_path / "live.jsonl"
        live.write_text("\n".join(json.dumps({"topic": t, "event": e})
                                  for t, e in spread("AFTER", timedelta(days=31))))
        p.cli("replay", str(live))
        p.wait_idle()
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as response:
            scraped = response.read().decode()
    finally:
        p.stop_all()
    assert json.loads(p.cli("dlq", "list", "--format", "json").stdout) == []
    roster = {e.engineer_id: e.team_id for e in sim.roster}
    for start, end in [("2026-06-01", "2026-07-01"), ("2026-09-01", "2026-10-01"),
                       ("2026-06-01", "2026-10-01")]:
        want = oracle.compute_kpis(sim.records, parse_instant(start, tz),
                                   parse_instant(end, tz), roster=roster)
        problems = mismatches(want, p.json("kpis", "--from", start, "--to", end),
                              "engineer_id")
        assert not problems, f"window {start}..{end}: " + "; ".join(problems[:20])
    retired = sum(float(line.rsplit(" ", 1)[1]) for line in scraped.splitlines()
                  if line.startswith("servicescore_tickets_retired_total{"))
    assert retired > 0, "no ticket state retired"
