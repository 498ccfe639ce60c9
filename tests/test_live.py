"""The live view's backlog: open tickets per engineer and team, and the overdue ones (kpis.md
1.1: open tickets already past their resolution target, counted from the current episode's
start on calendar time)."""

from __future__ import annotations

from schemas.facts import FACT_TABLES
from servicescore.core.settings import Settings
from servicescore.queries import kpis, live

NOW = 1_793_548_800_000  # a fixed present: 2026-11-02 00:00 +08:00
HOUR = 3_600_000


def store(storage, kind: str, **fact) -> None:
    spec = FACT_TABLES[kind]
    storage.insert(spec.table, [spec.row({**fact, "v": 1, "del": 0})], spec.columns)


def ticket(storage, ticket_id: str, owner: str, priority: str, episode_start: int,
           status: str = "open", opened_at: int | None = None) -> None:
    store(storage, "ticket", ticket_id=ticket_id, customer_id="C1", category="printer",
          priority=priority, channel="phone", requires_onsite=False,
          opened_at=episode_start if opened_at is None else opened_at, status=status,
          episodes=1 if opened_at is None else 2, episode_start=episode_start,
          owner_id=owner, escalations=0)


def member(storage, engineer: str, team: str) -> None:
    store(storage, "roster", engineer_id=engineer, name=engineer, role="field_engineer",
          team_id=team, active=True, updated_at=NOW)


def backlog_of(storage, group: str = "engineer") -> dict:
    key = "engineer_id" if group == "engineer" else "team_id"
    return {row[key]: row for row in live.backlog(storage, NOW, group)}


def a_backlog(storage) -> None:
    member(storage, "E1", "tA")
    member(storage, "E2", "tA")
    ticket(storage, "T1", "E1", "P1", NOW - 8 * HOUR)  # exactly the 8 h target: not yet overdue
    ticket(storage, "T2", "E1", "P1", NOW - 8 * HOUR - 1)  # overdue
    ticket(storage, "T3", "E1", "P4", NOW - 100 * HOUR)  # P4 has 168 h
    # reopened an hour ago: its episode, not the ticket, is what is late or not
    ticket(storage, "T4", "E1", "P1", NOW - HOUR, opened_at=NOW - 30 * 24 * HOUR)
    ticket(storage, "T5", "E1", "P1", NOW - 99 * HOUR, status="resolved")  # not open
    ticket(storage, "T6", "E2", "P2", NOW - 25 * HOUR)  # P2 has 24 h: overdue


def test_overdue_counts_open_tickets_past_their_priority_target(storage):
    a_backlog(storage)
    rows = backlog_of(storage)
    assert {e: (r["open_tickets"], r["overdue_tickets"]) for e, r in rows.items()} == {
        "E1": (4, 1), "E2": (1, 1)}
    assert rows["E1"]["oldest_open_age_s"] == 100 * 3600
    assert rows["E1"]["team_id"] == "tA"


def test_overdue_per_team_adds_up_its_engineers(storage):
    a_backlog(storage)
    member(storage, "E3", "tB")
    ticket(storage, "T7", "E3", "P3", NOW - 10 * HOUR)
    teams = backlog_of(storage, "team")
    assert {t: (r["open_tickets"], r["overdue_tickets"]) for t, r in teams.items()} == {
        "tA": (5, 2), "tB": (1, 0)}


def test_overdue_follows_the_synced_resolution_targets(storage):
    a_backlog(storage)
    defaults = {name: getattr(Settings(_env_file=None), name) for name in (
        "frt_targets_s", "onsite_targets_s", "sla_clock", "review_weights")}
    kpis.sync_targets(storage, **defaults,
                      aht_targets_s={"P1": 1800, "P2": 90_000, "P3": 1, "P4": 1})
    rows = backlog_of(storage)
    # P1 30 min: T1, T2 and T4 (its episode is an hour old); P4 T3 too. P2 25 h: T6 not.
    assert (rows["E1"]["overdue_tickets"], rows["E2"]["overdue_tickets"]) == (4, 0)


def test_an_empty_backlog_has_no_rows(storage):
    ticket(storage, "T1", "E1", "P1", NOW - 99 * HOUR, status="resolved")
    assert live.backlog(storage, NOW) == []
