"""The simulated after-sales department: its staff, customers and arrivals, and the log of the
events they cause. ``Department.records()`` runs it once."""

from __future__ import annotations

import heapq
import math
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from servicescore.dev.simulate.assessments import assess
from servicescore.dev.simulate.chance import cumulative, poisson
from servicescore.dev.simulate.clock import Clock, local_ts
from servicescore.dev.simulate.customers import CustomerBase, customer_id
from servicescore.dev.simulate.staff import Engineer, Skill, names, role_team_slots, teams_of
from servicescore.dev.simulate.ticket import TicketLife
from servicescore.dev.simulate.voice import Voice
from servicescore.dev.simulate.world import (
    DAY,
    HOUR_WEIGHTS,
    TICKETS_PER_ENGINEER_DAY,
    WEEKDAY_FACTOR,
)

TOPIC_ORDER = ("ticket-opened", "ticket-first-response", "ticket-escalated",
               "ticket-onsite-arrived", "ticket-resolved", "ticket-reopened", "survey-submitted",
               "complaint-filed", "assessment-recorded")
TOPIC_RANK = {topic: rank for rank, topic in enumerate(TOPIC_ORDER)}
FOLLOW_UPS = frozenset({"ticket-reopened", "survey-submitted"})


class Department:
    """The simulated after-sales department and its customers; ``records()`` runs it once."""

    def __init__(self, start: date, days: int, engineers: int, seed: int, tz: ZoneInfo,
                 tickets_per_day: float | None):
        self.rng = random.Random(seed)
        self.tz, self.start_date, self.days, self.seed = tz, start, days, seed
        self.start = local_ts(start, tz)
        self.end = local_ts(start + timedelta(days=days), tz)
        self.clock = Clock(tz, self.rng, self.end)
        self.rate = tickets_per_day if tickets_per_day is not None else (
            TICKETS_PER_ENGINEER_DAY * engineers)
        self.roster, self.skills, self.leaves = self._staff(engineers)
        self.teams = sorted({e.team_id for e in self.roster})
        self.customers = CustomerBase.of(self.rng, self.rate * self.days * 0.85, self.teams)
        self.out: list[tuple[int, int, int, str, dict]] = []
        self.arrivals: list[tuple[int, int, int | None, str | None]] = []
        self.arrival_seq = 0

    def records(self) -> list[tuple[str, dict]]:
        voice = Voice(self)
        life = TicketLife(self, voice)
        self.arrivals = self._base_arrivals()
        while self.arrivals:
            life.run(*heapq.heappop(self.arrivals))
        voice.background_complaints()
        assess(self)
        return self._stamped()

    # --- staff -----------------------------------------------------------------------------

    def _staff(self, n: int):
        rng = self.rng
        teams = teams_of(n)
        team_quality = {t: rng.gauss(0, 0.45) for t in teams}
        slots = role_team_slots(n, teams)
        rng.shuffle(slots)
        chosen = names(rng, n)
        leavers = set(rng.sample(range(n), n // 15))
        roster, skills, leaves = [], {}, {}
        for i, (role, team) in enumerate(slots):
            e = Engineer(f"E{i + 1:03d}", chosen[i], role, team, active=i not in leavers)
            quality = max(-2.0, min(2.0, team_quality[team] + rng.gauss(0, 0.6)))
            skills[e.engineer_id] = Skill.of(quality)
            # someone who left this month worked its first part
            leaves[e.engineer_id] = (self.start + rng.uniform(0.2, 0.5) * self.days * DAY
                                     if i in leavers else math.inf)
            roster.append(e)
        return roster, skills, leaves

    def staff_on(self, ts: float, team: str | None = None, role: str | None = None,
                 not_: Engineer | None = None) -> list[Engineer]:
        return [e for e in self.roster if self.leaves[e.engineer_id] > ts
                and (team is None or e.team_id == team) and (role is None or e.role == role)
                and e is not not_]

    def engineer(self, ts: int, team: str, role: str, not_: Engineer | None = None) -> Engineer:
        """Someone of the role in the team; else of the role anywhere; else anyone."""
        pool = (self.staff_on(ts, team, role, not_) or self.staff_on(ts, None, role, not_)
                or self.staff_on(ts, team, None, not_) or self.staff_on(ts, None, None, not_)
                or self.roster)
        return self.rng.choice(pool)

    # --- customers and arrivals ------------------------------------------------------------

    def customer_id(self) -> str:
        """Some customer, as the wire names them."""
        return customer_id(self.customers.pick(self.rng))

    def _base_arrivals(self):
        heap, hours, hour_cum = [], range(24), list(cumulative(HOUR_WEIGHTS))
        for offset in range(self.days):
            day = self.start_date + timedelta(days=offset)
            midnight = local_ts(day, self.tz)
            count = poisson(self.rng, self.rate * WEEKDAY_FACTOR[day.weekday()])
            for hour in self.rng.choices(hours, cum_weights=hour_cum, k=count):
                self.arrival_seq += 1
                heap.append((midnight + hour * 3600 + self.rng.randrange(3600), self.arrival_seq,
                             None, None))
        heapq.heapify(heap)
        return heap

    def schedule_repeat(self, customer: int, category: str, resolved: int,
                        engineer: Engineer) -> None:
        """A repeat fault: the same customer calls again about the same category."""
        if self.rng.random() >= self.skills[engineer.engineer_id].repeat:
            return
        days = min(29.0, self.rng.lognormvariate(math.log(4), 0.8))
        at = self.clock.desk_time(resolved + int(days * DAY))
        if at < self.end:
            self.arrival_seq += 1
            heapq.heappush(self.arrivals, (at, self.arrival_seq, customer, category))

    # --- output -----------------------------------------------------------------------------

    def emit(self, at: int, topic: str, event: dict, source: str | None) -> bool:
        """Record one event unless it falls after the window (follow-ups may spill over)."""
        if at >= self.end and topic not in FOLLOW_UPS:
            return False
        if source and self.rng.random() < 0.95:  # source is optional on the wire
            event["source"] = source
        self.out.append((at, TOPIC_RANK[topic], len(self.out), topic, event))
        return True

    def _stamped(self) -> list[tuple[str, dict]]:
        """Events in time order, with their ids and ``occurred_at`` in the wire's three forms."""
        self.out.sort()
        prefix = f"sim-{self.seed}-{self.start_date:%Y%m%d}"
        records = []
        for n, (at, _rank, _seq, topic, event) in enumerate(self.out):
            head = {"event_id": f"{prefix}-{n:07d}", "occurred_at": self._wire_time(at)}
            records.append((topic, head | event))
        return records

    def _wire_time(self, at: int) -> str | int:
        draw = self.rng.random()
        if draw < 0.82:
            return datetime.fromtimestamp(at, self.tz).isoformat()
        if draw < 0.92:
            return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return at * 1000
