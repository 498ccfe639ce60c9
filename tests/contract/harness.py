"""The contract harness: events in, the product's KPIs out, without Kafka, checked against the
oracle (tests/oracle.py) on every field it returns.

The records take the path the worker and the sink give them, minus the transport::

    (topic, value) --intake.route-->  dead letters | facts | ticket records   (streams/intake.py)
    ticket record --lifecycle.apply on its ticket's state--> facts          (streams/lifecycle.py)
    facts --the sink's Batch (highest version per identity) and writer--> embedded ClickHouse
    ClickHouse --kpis.compute / drilldown.resolutions / live.backlog--> rows (servicescore/queries)

One ``OracleConfig`` configures both sides: the product gets its working calendar, SLA targets,
SLA clock and review weights from it. A failure names the key and the field that differ.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable

from consumers.batch import Batch, Source
from consumers.clickhouse import ClickHouseWriter
from schemas.calendar import DAY_NAMES, WorkCalendar
from servicescore.app import roster as roster_store
from servicescore.queries import drilldown, kpis, live
from servicescore.storage.clickhouse import Storage
from streams import lifecycle, ticket
from streams.facts import Derived
from streams.intake import route
from tests import oracle

NOW_MS = 1_800_000_000_000  # the arrival time the steps see: 2027-01-15, after every event
EVER = (0, 10**15)
BACKLOG = ("team_id", "open_tickets", "overdue_tickets", "oldest_open_since")


def calendar_of(config: oracle.OracleConfig) -> WorkCalendar:
    """The oracle's working calendar in the product's terms."""
    hours = {DAY_NAMES[day]: [f"{start}-{end}" for start, end in spans]
             for day, spans in config.work_hours.items()}
    return WorkCalendar(config.timezone, hours, config.holidays, config.workdays)


def encoded(value) -> bytes:
    """A message value as the broker delivers it: bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, ensure_ascii=False).encode()


class Product:
    """The worker's two agents in a plain loop, and the sink, writing to ``storage`` (empty
    facts expected). Every ``send`` is one sink batch; the tickets' states live on between
    sends, as in the worker's table."""

    def __init__(self, storage: Storage, config: oracle.OracleConfig,
                 roster: dict[str, str] | None = None):
        self.storage, self.config, self.roster = storage, config, roster or {}
        self.calendar = calendar_of(config)
        self.records: list[tuple[str, object]] = []
        self.dead_letters: list[dict] = []
        self.states: dict[str, bytes] = {}  # ticket_id -> encoded state, as in the Faust table
        self.recent: dict[str, Derived] = {}  # the agent's cache of each ticket's last step
        self.retired = False
        kpis.sync_targets(storage, config.frt_targets_s, config.aht_targets_s,
                          config.onsite_targets_s, config.sla_clock, config.review_weights)
        if self.roster:
            roster_store.store(storage, [
                {"engineer_id": e, "name": e, "role": "field_engineer", "team_id": team,
                 "active": True} for e, team in self.roster.items()])

    def retire(self) -> None:
        """Another product now owns the database: reading this one would read that one's."""
        self.retired = True

    def send(self, records: Iterable[tuple[str, object]]) -> Product:
        assert not self.retired, "a later product() call emptied this product's database"
        facts = []
        for topic, value in records:
            offset = len(self.records)
            self.records.append((topic, value))
            routed = route(topic, encoded(value), 0, offset, NOW_MS, self.config.timezone)
            if routed.target == "dlq":
                self.dead_letters.append(routed.value)
            elif routed.target == "fact":
                facts.append(routed.value)
            else:
                facts += self.lifecycle(routed.value)
        self.write(facts)
        return self

    def lifecycle(self, rec: dict) -> list[dict]:
        """What the lifecycle agent does with one ticket record."""
        rec = {k: v for k, v in rec.items() if k != "src"}
        tid = rec["ticket_id"]
        state = ticket.decode(self.states.get(tid), tid)
        step = lifecycle.apply(state, rec, self.calendar, NOW_MS, self.recent.get(tid))
        if step.after is not None:
            self.recent[tid] = step.after
        if step.refused:
            self.dead_letters.append({"reason": step.refused.reason, "ticket_id": tid})
            return []
        self.states[tid] = ticket.encode(state)
        return step.facts

    def write(self, facts: list[dict]) -> None:
        batch = Batch()
        batch.add(Source("facts", 0, len(self.records), None), facts)
        written = ClickHouseWriter(self.storage).write(batch)
        assert not written.refused, f"ClickHouse refused facts: {written.refused}"

    # ---------------------------------------------------------------- the product vs the oracle

    def kpis(self, window=EVER, group: str = "engineer") -> dict:
        """The product's KPIs per engineer (or team), after checking them equal to the oracle's
        on every field the oracle returns."""
        assert not self.retired, "a later product() call emptied this product's database"
        key = "engineer_id" if group == "engineer" else "team_id"
        got = {row[key]: row for row in kpis.compute(self.storage, *window, group=group)}
        want = oracle.compute_kpis(self.records, *window, self.config, roster=self.roster,
                                   group=group)
        problems = [f"{k!r}: only in the {'oracle' if k in want else 'product'}"
                    for k in set(want) ^ set(got)]
        problems += [f"{k!r}.{name}: oracle {value!r}, product {got[k].get(name, 'absent')!r}"
                     for k in set(want) & set(got) for name, value in want[k].items()
                     if not same(value, got[k].get(name, "absent"))]
        assert not problems, "\n".join(sorted(problems))
        return got

    def drilldown(self, window=EVER, engineer: str | None = None) -> list[dict]:
        """The drill-down rows, after checking them equal to the oracle's reading."""
        assert not self.retired, "a later product() call emptied this product's database"
        got = drilldown.resolutions(self.storage, *window, engineer=engineer)
        want = [row for row in expected_drilldown(self.records, self.config, self.roster)
                if window[0] <= row["resolved_at"] < window[1]
                and engineer in (None, row["resolved_by"])]
        assert [(r["ticket_id"], r["episode"]) for r in got] == [
            (r["ticket_id"], r["episode"]) for r in want]
        for mine, theirs in zip(got, want, strict=True):
            wrong = [f"{name}: oracle {value!r}, product {mine.get(name, 'absent')!r}"
                     for name, value in theirs.items()
                     if not same(value, normal(mine.get(name, "absent")))]
            assert not wrong, f"{mine['ticket_id']}#{mine['episode']}: " + "; ".join(wrong)
        return got

    def backlog(self, now_ms: int) -> dict:
        """Open tickets per owner, after checking them equal to the oracle's tickets."""
        assert not self.retired, "a later product() call emptied this product's database"
        got = {r["engineer_id"]: r for r in live.backlog(self.storage, now_ms)}
        want = expected_backlog(self.records, self.config, self.roster, now_ms)
        assert {e: {k: row[k] for k in BACKLOG} for e, row in got.items()} == want
        return got


def same(want, got) -> bool:
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, bool) or isinstance(got, bool):
        return bool(want) == bool(got) and isinstance(got, (bool, int))
    if isinstance(want, list):
        return isinstance(got, list) and sorted(want) == sorted(got)
    if isinstance(want, str) or isinstance(got, str):
        return want == got
    return math.isclose(float(want), float(got), rel_tol=1e-9, abs_tol=1e-9)


def normal(value):
    """ClickHouse's arrays come back as lists, its UInt8 flags as ints."""
    return list(value) if isinstance(value, tuple) else value


# ------------------------------------------------------------ the oracle's drill-down and backlog


def oracle_tickets(records, config):
    events = oracle.valid_unique_events(records)
    tickets = oracle.build_tickets(events)
    return tickets, oracle.NewTicketIndex(tickets)


def expected_drilldown(records, config: oracle.OracleConfig, roster: dict) -> list[dict]:
    """One row per resolution with the per-ticket facts kpis.md's drill-down lists, read from
    the oracle's tickets, in the product's order (resolved_at, ticket, episode)."""
    tickets, index = oracle_tickets(records, config)
    rows = []
    for t in tickets:
        response = t.first_response
        samples = oracle.resolutions_of(t, index, config)
        for end, sample in zip(t.episode_ends, samples, strict=True):
            credited = [s for s in oracle.surveys_of(t) if s.engineer == end.engineer]
            rows.append({
                "ticket_id": t.ticket_id, "episode": end.episode,
                "customer_id": t.opened.fields["customer_id"],
                "category": t.opened.fields["category"], "priority": t.priority,
                "channel": t.opened.fields["channel"], "opened_at": t.opened_at,
                "first_response_at": response.t if response else None,
                "first_responder_id": t.first_responder,
                "frt_s": max(0, response.t - t.opened_at) / 1000 if response else None,
                "ticket_escalations": len(t.escalations),
                "escalated_in_episode": end.escalated, "episode_start": end.episode_start,
                "resolved_at": end.t, "resolved_by": end.engineer,
                "team_id": roster.get(end.engineer),
                "handling_time_s": sample.handling.calendar_ms / 1000,
                "handling_time_bh_s": sample.handling.business_ms / 1000,
                "first_contact": sample.fcr,
                "reopened_7d": oracle.reopened_within(t, end.t, 7),
                "reopened_30d": oracle.reopened_within(t, end.t, 30),
                "new_ticket_7d": index.other_ticket_within(t, end.t, 7),
                "new_ticket_30d": index.other_ticket_within(t, end.t, 30),
                "repeat_7d": sample.repeat_7d, "repeat_30d": sample.repeat_30d,
                "survey_csat": [s.csat for s in credited],
                "survey_nps": [-1 if s.nps is None else s.nps for s in credited],
            })
    return sorted(rows, key=lambda r: (r["resolved_at"], r["ticket_id"], r["episode"]))


def expected_backlog(records, config: oracle.OracleConfig, roster: dict, now_ms: int) -> dict:
    """Open tickets per owner (docs/decisions.md: the last escalation's target, else the
    assignee, else the first responder, else ''), overdue past the resolution target counted
    from the open episode's start on calendar time."""
    tickets, _ = oracle_tickets(records, config)
    out: dict = defaultdict(lambda: {"team_id": None, "open_tickets": 0,
                                     "overdue_tickets": 0, "oldest_open_since": None})
    for t in tickets:
        since = open_since(t)
        if since is None:
            continue
        targets = [e.fields.get("to_engineer_id") for e in t.escalations]
        owner = ([x for x in targets if x] or [None])[-1] or t.opened.fields.get(
            "assignee_id") or t.first_responder or ""
        row = out[owner]
        row["team_id"] = roster.get(owner)
        row["open_tickets"] += 1
        row["overdue_tickets"] += now_ms > since + config.aht_targets_s[t.priority] * 1000
        row["oldest_open_since"] = min(since, row["oldest_open_since"] or since)
    return dict(out)


def open_since(t) -> int | None:
    """The start of the ticket's open episode; None when it is resolved."""
    since: int | None = t.opened_at
    for event in t.events:
        if event.topic == oracle.RESOLVED:
            since = None
        elif event.topic == oracle.REOPENED and since is None:
            since = event.t
    return since
