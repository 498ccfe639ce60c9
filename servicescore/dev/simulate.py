"""Seeded, realistic after-sales traffic for every topic of the event contract (events.md).

One ``random.Random(seed)`` drives everything, so the same arguments give byte-identical output.
The world: customers (larger accounts call more, each has a usual fault category) open tickets with
business-hour peaks in the local timezone; engineers of three roles in several teams differ in a
hidden skill that makes them faster or slower, reopen and escalate less or more, and please
customers more or less. Tickets run through first response, escalations, field visits,
resolution, reopens (new episodes) and surveys; complaints and assessments complete the picture.
Lifecycle events stay inside ``[start, start + days)``; the tickets they cut off are the backlog.
Follow-ups (surveys, reopens) may spill past the end, as they do in a real month.
"""

from __future__ import annotations

import csv
import heapq
import json
import math
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import IO
from zoneinfo import ZoneInfo

ROLES = ("field_engineer", "support_specialist", "service_rep")
ROLE_SHARE = {"field_engineer": 0.4, "support_specialist": 0.35, "service_rep": 0.25}
TEAM_NAMES = ("north", "south", "east", "west", "central", "metro", "enterprise", "retail")
CHANNELS = {"phone": 38, "chat": 22, "web": 18, "email": 17, "onsite": 5}
PRIORITIES = {"P1": 7, "P2": 28, "P3": 45, "P4": 20}
# category -> (share of tickets, share needing a field visit, median handling hours at P3)
CATEGORIES = {
    "network": (30, 0.25, 4.0),
    "hardware": (22, 0.5, 8.0),
    "software": (22, 0.05, 3.0),
    "billing": (14, 0.0, 2.0),
    "installation": (12, 0.85, 6.0),
}
PRODUCTS = {
    "network": ("Router-AX3000", "Mesh-W6", "企业宽带-100M"),
    "hardware": ("ONT-G2", "STB-4K", "Router-AX3000"),
    "software": ("App-Android", "App-iOS", "云盘企业版"),
    "billing": ("月付套餐", "年付套餐"),
    "installation": ("ONT-G2", "Mesh-W6", "STB-4K"),
}
RESOLUTION_CODES = {
    "network": ("fixed", "config_changed", "workaround", "no_fault_found"),
    "hardware": ("part_replaced", "fixed", "no_fault_found"),
    "software": ("fixed", "config_changed", "customer_education", "workaround"),
    "billing": ("refund", "customer_education", "fixed"),
    "installation": ("fixed", "config_changed"),
}
# relative arrivals per local hour 0..23 and per weekday Mon..Sun
HOUR_WEIGHTS = (0.15, 0.1, 0.08, 0.08, 0.08, 0.12, 0.25, 0.5, 0.9, 1.6, 1.8, 1.7,
                1.0, 1.3, 1.6, 1.6, 1.5, 1.3, 0.9, 0.6, 0.5, 0.4, 0.3, 0.2)
WEEKDAY_FACTOR = (1.0, 1.0, 1.0, 1.0, 1.0, 0.55, 0.45)
TICKETS_PER_ENGINEER_DAY = 6.5
RESPONSE_TARGET_S = {"P1": 900, "P2": 3600, "P3": 14400, "P4": 86400}  # kpis.md defaults
RESPONSE_MEDIAN_S = {"P1": 600, "P2": 1800, "P3": 5400, "P4": 18000}
CHANNEL_RESPONSE = {"phone": 0.3, "chat": 0.5, "web": 1.0, "email": 1.5, "onsite": 0.2}
ONSITE_MEDIAN_S = {"P1": 2.5 * 3600, "P2": 5 * 3600, "P3": 16 * 3600, "P4": 40 * 3600}
PRIORITY_HANDLING = {"P1": 0.35, "P2": 0.6, "P3": 1.0, "P4": 1.8}
PRIORITY_ESCALATION = {"P1": 1.8, "P2": 1.2, "P3": 1.0, "P4": 0.6}
SOURCES = {"phone": "callcenter", "chat": "callcenter", "web": "web-portal",
           "email": "mail-gateway", "onsite": "field-app"}
SURVEY_SHARE = 0.6
NPS_RANGE = {5: (8, 10), 4: (7, 9), 3: (5, 8), 2: (2, 6), 1: (0, 4)}  # NPS follows CSAT
DESK_HOURS = (8, 20)  # the service desk works 08:00-20:00 local; only P1 is handled at night
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "强", "军", "洋", "勇", "艳", "杰", "涛", "明",
         "超", "秀英", "建华", "志强", "晓东", "海燕", "文博", "雨桐", "子涵", "浩然")
ESCALATION_REASONS = ("需要二线技术支持", "超出一线处理权限", "SLA即将超时",
                      "疑似硬件故障需现场处理",
                      "customer requested a specialist", "known issue, needs vendor ticket")
REOPEN_REASONS = ("问题再次出现", "故障复现，客户要求重新处理", "客户反馈仍无法上网",
                  "fix did not hold", "same error after restart")
COMPLAINT_REASONS = ("服务态度差", "上门迟到", "问题长时间未解决", "多次转接，没人负责",
                     "engineer did not show up", "收费不透明")
SURVEY_COMMENTS = {
    "good": ("工程师很专业，响应很快", "服务态度好，问题一次解决", "上门准时，非常满意",
             "Quick and friendly, thanks!"),
    "fair": ("还可以，但等待时间有点长", "解决了，但沟通不太顺畅", "OK overall"),
    "poor": ("等了很久才有人联系", "问题反复出现，很失望", "多次转接，没人负责",
             "Engineer was late and rude"),
}
ASSESSMENT_COMMENTS = ("工单记录完整规范", "需加强知识库贡献", "团队协作积极", "培训考核优秀",
                       "Good mentoring of new staff", "客户沟通耐心细致")
TOPIC_ORDER = ("ticket-opened", "ticket-first-response", "ticket-escalated",
               "ticket-onsite-arrived", "ticket-resolved", "ticket-reopened", "survey-submitted",
               "complaint-filed", "assessment-recorded")
TOPIC_RANK = {topic: rank for rank, topic in enumerate(TOPIC_ORDER)}
FOLLOW_UPS = frozenset({"ticket-reopened", "survey-submitted"})
DAY = 86400


@dataclass(frozen=True)
class Engineer:
    engineer_id: str
    name: str
    role: str
    team_id: str
    active: bool = True


@dataclass
class Traffic:
    roster: list[Engineer]
    records: list[tuple[str, dict]]  # (topic, event) in event-time order


@dataclass(frozen=True)
class Skill:
    """Hidden traits of one engineer; ``quality`` is a z-score the others derive from."""

    quality: float
    speed: float  # multiplier on the durations the engineer controls (< 1 is faster)
    reopen: float  # chance that a resolution by them is reopened
    escalation: float
    repeat: float  # chance of a new fault of the same customer and category afterwards
    csat: float  # shift of the customer's CSAT
    complaint: float  # multiplier on complaint chances

    @classmethod
    def of(cls, quality: float) -> Skill:
        return cls(quality, math.exp(-0.35 * quality), 0.07 * math.exp(-0.45 * quality),
                   0.09 * math.exp(-0.4 * quality), 0.06 * math.exp(-0.4 * quality),
                   0.35 * quality, math.exp(-0.6 * quality))


@dataclass
class Ticket:
    ticket_id: str
    customer: int  # index into the customer base
    category: str
    priority: str
    channel: str
    team_id: str
    assignee: Engineer | None
    requires_onsite: bool
    opened: int
    responder: Engineer | None = None
    response_late: bool = False
    escalations: int = 0
    resolutions: list[tuple[int, Engineer]] = field(default_factory=list)
    reopens: list[int] = field(default_factory=list)


def simulate(start: date, days: int, engineers: int, seed: int = 1,
             timezone: str = "Asia/Shanghai", tickets_per_day: float | None = None) -> Traffic:
    """A month (or any span) of after-sales traffic; ``tickets_per_day`` is the working-day rate
    (default 6.5 per engineer), weekends get fewer."""
    if days < 1 or engineers < 1:
        raise ValueError("days and engineers must be at least 1")
    department = Department(start, days, engineers, seed, ZoneInfo(timezone), tickets_per_day)
    return Traffic(department.roster, department.records())


def write_jsonl(records: list[tuple[str, dict]], path_or_file: str | os.PathLike | IO) -> int:
    """One ``{"topic": ..., "event": {...}}`` per line, UTF-8; returns the number of lines."""
    lines = (json.dumps({"topic": t, "event": e}, ensure_ascii=False) + "\n" for t, e in records)
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "w", encoding="utf-8", newline="\n") as out:
            return _write_lines(lines, out)
    return _write_lines(lines, path_or_file)


def write_roster_csv(roster: list[Engineer], path_or_file: str | os.PathLike | IO) -> None:
    """The roster as CSV: ``engineer_id,name,role,team_id,active`` (active is true/false)."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "w", encoding="utf-8", newline="") as out:
            _write_roster(roster, out)
    else:
        _write_roster(roster, path_or_file)


def _write_lines(lines, out: IO) -> int:
    text_mode = hasattr(out, "encoding")  # text streams have it, binary ones do not
    count = 0
    for line in lines:
        out.write(line if text_mode else line.encode("utf-8"))
        count += 1
    return count


def _write_roster(roster: list[Engineer], out: IO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["engineer_id", "name", "role", "team_id", "active"])
    for e in roster:
        writer.writerow([e.engineer_id, e.name, e.role, e.team_id, "true" if e.active else "false"])


@dataclass(frozen=True)
class CustomerBase:
    cum_weights: list[float]  # how often each customer calls, cumulated for ``choices``
    home_category: list[str]  # the fault each customer usually has
    team: list[str]  # the team serving the customer's region


class Department:
    """The simulated after-sales department and its customers; ``records()`` runs it once."""

    def __init__(self, start: date, days: int, engineers: int, seed: int, tz: ZoneInfo,
                 tickets_per_day: float | None):
        self.rng = random.Random(seed)
        self.tz, self.start_date, self.days, self.seed = tz, start, days, seed
        self.start = _local_ts(start, tz)
        self.end = _local_ts(start + timedelta(days=days), tz)
        self.rate = tickets_per_day if tickets_per_day is not None else (
            TICKETS_PER_ENGINEER_DAY * engineers)
        self.roster, self.skills, self.leaves = self._staff(engineers)
        self.teams = sorted({e.team_id for e in self.roster})
        self.customers = self._customer_base()
        self.out: list[tuple[int, int, int, str, dict]] = []
        self.arrivals: list[tuple[int, int, int | None, str | None]] = []
        self.daily_tickets: dict[date, int] = {}
        self.arrival_seq = 0

    def records(self) -> list[tuple[str, dict]]:
        self.arrivals = self._base_arrivals()
        while self.arrivals:
            self._ticket(*heapq.heappop(self.arrivals))
        self._background_complaints()
        self._assessments()
        return self._stamped()

    # --- staff -----------------------------------------------------------------------------

    def _staff(self, n: int):
        rng = self.rng
        team_count = 1 if n < 4 else min(max(2, round(n / 7)), 24)
        teams = [f"team-{TEAM_NAMES[i]}" if i < len(TEAM_NAMES) else f"team-{i + 1}"
                 for i in range(team_count)]
        team_quality = {t: rng.gauss(0, 0.45) for t in teams}
        slots = _role_team_slots(n, teams)
        rng.shuffle(slots)
        names = _names(rng, n)
        leavers = set(rng.sample(range(n), n // 15))
        roster, skills, leaves = [], {}, {}
        for i, (role, team) in enumerate(slots):
            e = Engineer(f"E{i + 1:03d}", names[i], role, team, active=i not in leavers)
            quality = max(-2.0, min(2.0, team_quality[team] + rng.gauss(0, 0.6)))
            skills[e.engineer_id] = Skill.of(quality)
            # someone who left this month worked its first part
            leaves[e.engineer_id] = (self.start + rng.uniform(0.2, 0.5) * self.days * DAY
                                     if i in leavers else math.inf)
            roster.append(e)
        return roster, skills, leaves

    def _staff_on(self, ts: float, team: str | None = None, role: str | None = None,
                  not_: Engineer | None = None) -> list[Engineer]:
        return [e for e in self.roster if self.leaves[e.engineer_id] > ts
                and (team is None or e.team_id == team) and (role is None or e.role == role)
                and e is not not_]

    def _engineer(self, ts: int, team: str, role: str, not_: Engineer | None = None) -> Engineer:
        """Someone of the role in the team; else of the role anywhere; else anyone."""
        pool = (self._staff_on(ts, team, role, not_) or self._staff_on(ts, None, role, not_)
                or self._staff_on(ts, team, None, not_) or self._staff_on(ts, None, None, not_)
                or self.roster)
        return self.rng.choice(pool)

    # --- customers and arrivals ------------------------------------------------------------

    def _customer_base(self) -> CustomerBase:
        expected = self.rate * self.days * 0.85
        count = max(50, int(expected * 8))  # most customers need no help in a given month
        weights = [1 / (i + 1) ** 0.3 for i in range(count)]  # larger accounts call more
        cats = list(CATEGORIES)
        cat_weights = [share for share, _, _ in CATEGORIES.values()]
        home = self.rng.choices(cats, cat_weights, k=count)
        team = [self.rng.choice(self.teams) for _ in range(count)]
        return CustomerBase(list(_cumulative(weights)), home, team)

    def _customer(self) -> int:
        cum = self.customers.cum_weights
        return self.rng.choices(range(len(cum)), cum_weights=cum)[0]

    def _customer_id(self) -> str:
        return _customer_id(self._customer())

    def _category_of(self, customer: int) -> str:
        if self.rng.random() < 0.6:
            return self.customers.home_category[customer]
        cats = list(CATEGORIES)
        return self.rng.choices(cats, [share for share, _, _ in CATEGORIES.values()])[0]

    def _base_arrivals(self):
        heap, hours, hour_cum = [], range(24), list(_cumulative(HOUR_WEIGHTS))
        for offset in range(self.days):
            day = self.start_date + timedelta(days=offset)
            midnight = _local_ts(day, self.tz)
            count = _poisson(self.rng, self.rate * WEEKDAY_FACTOR[day.weekday()])
            for hour in self.rng.choices(hours, cum_weights=hour_cum, k=count):
                self.arrival_seq += 1
                heap.append((midnight + hour * 3600 + self.rng.randrange(3600), self.arrival_seq,
                             None, None))
        heapq.heapify(heap)
        return heap

    def _schedule_repeat(self, t: Ticket, resolved: int, engineer: Engineer) -> None:
        """A repeat fault: the same customer calls again about the same category."""
        if self.rng.random() >= self.skills[engineer.engineer_id].repeat:
            return
        days = min(29.0, self.rng.lognormvariate(math.log(4), 0.8))
        at = self._desk_time(resolved + int(days * DAY))
        if at < self.end:
            self.arrival_seq += 1
            heapq.heappush(self.arrivals, (at, self.arrival_seq, t.customer, t.category))

    # --- one ticket's life ------------------------------------------------------------------

    def _ticket(self, at: int, _seq: int, customer: int | None, category: str | None) -> None:
        customer = self._customer() if customer is None else customer
        category = category or self._category_of(customer)
        t = self._open(at, customer, category)
        self._work(t)
        self._survey(t)
        self._ticket_complaint(t)

    def _open(self, at: int, customer: int, category: str) -> Ticket:
        rng = self.rng
        channel = rng.choices(list(CHANNELS), list(CHANNELS.values()))[0]
        onsite = channel == "onsite" or rng.random() < CATEGORIES[category][1]
        team = self.customers.team[customer] if rng.random() < 0.85 else rng.choice(self.teams)
        assignee = self._assignee(at, team, channel, onsite) if rng.random() < 0.94 else None
        t = Ticket(self._ticket_id(at), customer, category,
                   rng.choices(list(PRIORITIES), list(PRIORITIES.values()))[0], channel, team,
                   assignee, onsite, at)
        event = {"ticket_id": t.ticket_id, "customer_id": _customer_id(customer),
                 "channel": channel, "priority": t.priority, "category": category, "team_id": team}
        if assignee:
            event["assignee_id"] = assignee.engineer_id
        if onsite or rng.random() < 0.5:  # the default false is often left out
            event["requires_onsite"] = onsite
        if rng.random() < 0.7:
            event["product"] = rng.choice(PRODUCTS[category])
        self._emit(at, "ticket-opened", event, SOURCES[channel])
        return t

    def _assignee(self, at: int, team: str, channel: str, onsite: bool) -> Engineer:
        """Dispatch prefers the role that fits the ticket but spreads load over the team."""
        pool = self._staff_on(at, team) or self._staff_on(at)
        fit = _role_fit(channel, onsite)
        return self.rng.choices(pool, [fit[e.role] for e in pool])[0]

    def _ticket_id(self, at: int) -> str:
        day = datetime.fromtimestamp(at, self.tz).date()
        self.daily_tickets[day] = self.daily_tickets.get(day, 0) + 1
        return f"TK-{self.seed}-{day:%Y%m%d}-{self.daily_tickets[day]:04d}"

    def _work(self, t: Ticket) -> None:
        """Episodes until the ticket stays resolved or the window ends (then it is backlog)."""
        step = self._first_response(t)
        episode = 1
        while step is not None:
            step = self._escalate(t, *step, episode)
            if step and t.requires_onsite and (episode == 1 or self.rng.random() < 0.4):
                step = self._onsite_visit(t, *step)
            step = step and self._resolve(t, *step)
            step = step and self._reopen(t, *step)
            episode += 1

    def _first_response(self, t: Ticket) -> tuple[int, Engineer] | None:
        rng = self.rng
        responder = t.assignee if t.assignee and rng.random() < 0.82 else self._engineer(
            t.opened, t.team_id, "service_rep" if t.channel != "onsite" else "field_engineer")
        median = RESPONSE_MEDIAN_S[t.priority] * CHANNEL_RESPONSE[t.channel]
        delay = rng.lognormvariate(math.log(median * self.skills[responder.engineer_id].speed), 0.8)
        at = self._desk_time(t.opened, t.priority) + max(30, int(delay * self._weekend(t.opened)))
        at = self._desk_time(at, t.priority)
        if rng.random() < 0.04:  # handled straight away without a recorded response
            return at, t.assignee or responder
        if not self._emit(at, "ticket-first-response", {
                "ticket_id": t.ticket_id, "engineer_id": responder.engineer_id,
                "channel": "email" if t.channel == "web" else t.channel}, "callcenter"):
            return None
        t.responder = responder
        t.response_late = at - t.opened > RESPONSE_TARGET_S[t.priority]
        return at, t.assignee or responder

    def _escalate(self, t: Ticket, at: int, handler: Engineer, episode: int):
        rng = self.rng
        chance = self.skills[handler.engineer_id].escalation * PRIORITY_ESCALATION[t.priority]
        for tier in (2, 3):
            if rng.random() >= chance * (1 if episode == 1 else 0.7) * (1 if tier == 2 else 0.12):
                break
            at += max(120, int(rng.lognormvariate(math.log(5400), 0.9)))
            target = self._escalation_target(t, at, handler, tier)
            event = {"ticket_id": t.ticket_id, "from_engineer_id": handler.engineer_id,
                     "tier": f"L{tier}", "reason": rng.choice(ESCALATION_REASONS)}
            if rng.random() < 0.94:  # otherwise escalated to a queue, not a person
                event["to_engineer_id"] = target.engineer_id
            if not self._emit(at, "ticket-escalated", event, "callcenter"):
                return None
            t.escalations += 1
            handler = target
        return at, handler

    def _escalation_target(self, t: Ticket, at: int, handler: Engineer, tier: int) -> Engineer:
        if t.requires_onsite and self.rng.random() < 0.3:
            return self._engineer(at, t.team_id, "field_engineer", not_=handler)
        if tier == 2 and handler.role != "support_specialist":
            return self._engineer(at, t.team_id, "support_specialist", not_=handler)
        other = [team for team in self.teams if team != handler.team_id] or self.teams
        return self._engineer(at, self.rng.choice(other), "support_specialist", not_=handler)

    def _onsite_visit(self, t: Ticket, at: int, handler: Engineer):
        rng = self.rng
        engineer = handler if handler.role == "field_engineer" else self._engineer(
            at, t.team_id, "field_engineer")
        if t.channel == "onsite" and not t.resolutions:  # opened by the engineer on site
            arrive = at + rng.randrange(60, 900)
        else:
            travel = ONSITE_MEDIAN_S[t.priority] * self.skills[engineer.engineer_id].speed
            arrive = max(at + rng.randrange(300, 1800),
                         self._field_time(at + int(rng.lognormvariate(math.log(travel), 0.7)), t))
        event = {"ticket_id": t.ticket_id, "engineer_id": engineer.engineer_id}
        ok = self._emit(arrive, "ticket-onsite-arrived", event, "field-app")
        return (arrive, engineer) if ok else None

    def _resolve(self, t: Ticket, at: int, handler: Engineer):
        rng = self.rng
        hours = 1.5 if handler.role == "field_engineer" and t.requires_onsite else (
            CATEGORIES[t.category][2] * PRIORITY_HANDLING[t.priority])
        median = hours * 3600 * self.skills[handler.engineer_id].speed
        if rng.random() < 0.015:  # waiting for spare parts or the customer
            median *= 8
        resolved = self._desk_time(at + max(300, int(rng.lognormvariate(math.log(median), 0.9))),
                                   t.priority)
        source = "field-app" if handler.role == "field_engineer" else "callcenter"
        if not self._emit(resolved, "ticket-resolved", {
                "ticket_id": t.ticket_id, "engineer_id": handler.engineer_id,
                "resolution_code": rng.choice(RESOLUTION_CODES[t.category])}, source):
            return None
        t.resolutions.append((resolved, handler))
        self._schedule_repeat(t, resolved, handler)
        return resolved, handler

    def _reopen(self, t: Ticket, resolved: int, handler: Engineer):
        rng = self.rng
        if len(t.reopens) >= 2 or rng.random() >= self.skills[handler.engineer_id].reopen:
            return None
        days = rng.uniform(0.1, 6.8) if rng.random() < 0.65 else rng.uniform(7.2, 28)
        at = self._desk_time(resolved + int(days * DAY))
        event = {"ticket_id": t.ticket_id, "reason": rng.choice(REOPEN_REASONS)}
        self._emit(at, "ticket-reopened", event, SOURCES[t.channel])
        t.reopens.append(at)
        if at >= self.end:
            return None
        keep = rng.random() < 0.7 and self.leaves[handler.engineer_id] > at
        next_handler = handler if keep else self._engineer(at, t.team_id, handler.role)
        return at + max(60, int(rng.lognormvariate(math.log(2400), 0.8))), next_handler

    # --- customers' voice -------------------------------------------------------------------

    def _survey(self, t: Ticket) -> None:
        rng = self.rng
        if not t.resolutions or rng.random() >= SURVEY_SHARE:
            return
        resolved, engineer = t.resolutions[0]
        at = self._desk_time(resolved + int(rng.lognormvariate(math.log(7200), 1.0)))
        if any(r <= at for r in t.reopens):  # reopened before answering: asked after the last fix
            resolved, engineer = t.resolutions[-1]
            at = self._desk_time(resolved + int(rng.lognormvariate(math.log(7200), 1.0)))
        csat = self._csat(t, engineer)
        event = {"ticket_id": t.ticket_id, "csat": csat}
        if rng.random() < 0.85:
            event["nps"] = rng.randint(*NPS_RANGE[csat])
        if rng.random() < 0.35:
            mood = "good" if csat >= 4 else "fair" if csat == 3 else "poor"
            event["comment"] = rng.choice(SURVEY_COMMENTS[mood])
        self._emit(at, "survey-submitted", event, "survey-platform")
        if csat <= 2 and rng.random() < 0.3:
            self._complaint(at + rng.randrange(1800, 2 * DAY), engineer, t, csat == 1)

    def _csat(self, t: Ticket, engineer: Engineer) -> int:
        score = (4.15 + self.skills[engineer.engineer_id].csat - 0.7 * len(t.reopens)
                 - 0.4 * (t.escalations > 0) - 0.5 * t.response_late + self.rng.gauss(0, 0.8))
        return max(1, min(5, round(score)))

    def _ticket_complaint(self, t: Ticket) -> None:
        if not t.resolutions:
            return
        resolved, engineer = t.resolutions[-1]
        if self.rng.random() < 0.008 * self.skills[engineer.engineer_id].complaint:
            self._complaint(resolved + self.rng.randrange(3600, 3 * DAY), engineer, t, False)

    def _complaint(self, at: int, engineer: Engineer, t: Ticket | None, serious: bool) -> None:
        rng = self.rng
        event = {"engineer_id": engineer.engineer_id,
                 "severity": "major" if rng.random() < (0.35 if serious else 0.15) else "minor"}
        if t is not None and rng.random() < 0.9:
            event["ticket_id"] = t.ticket_id
        if rng.random() < 0.8:
            event["reason"] = rng.choice(COMPLAINT_REASONS)
        self._emit(at, "complaint-filed", event, "callcenter")

    def _background_complaints(self) -> None:
        """Complaints about conduct that name no ticket (a call, a visit, a rude message)."""
        for e in self.roster:
            factor = self.skills[e.engineer_id].complaint * (1.5 if e.role == "service_rep" else 1)
            for _ in range(_poisson(self.rng, 0.4 * factor * self.days / 30)):
                at = self._work_moment(self.start, min(self.end, self.leaves[e.engineer_id]))
                self._complaint(at, e, None, False)

    # --- assessments ------------------------------------------------------------------------

    def _assessments(self) -> None:
        leads = {}
        for e in self.roster:
            leads.setdefault(e.team_id, e)
        for month_start, month_end in self._months():
            period = datetime.fromtimestamp(month_start, self.tz).strftime("%Y-%m")
            close = max(month_start, month_end - 5 * DAY)  # reviews are written at month end
            for e in self.roster:
                if e.active:
                    self._assess_month(e, leads[e.team_id] is e, period, (close, month_end),
                                       (month_start, month_end))

    def _assess_month(self, e: Engineer, lead: bool, period: str, close, month) -> None:
        rng = self.rng
        peers = [p for p in self.roster if p.team_id == e.team_id and p is not e] or [e]
        supervisor = f"MGR-{e.team_id}"
        periodic = [(dimension, "supervisor", supervisor)
                    for dimension in ("compliance", "attitude", "review360")]
        periodic.append(("review360", "self", e.engineer_id))
        periodic += [("collaboration", "peer", rng.choice(peers).engineer_id) for _ in range(2)]
        periodic += [("review360", "peer", p.engineer_id)
                     for p in rng.sample(peers, min(len(peers), rng.randint(2, 3)))]
        periodic += [("review360", "customer", self._customer_id())
                     for _ in range(rng.randint(1, 2))]
        if rng.random() < 0.5:
            periodic.append(("attitude", "customer", self._customer_id()))
        if lead:
            periodic += [("review360", "subordinate", p.engineer_id)
                         for p in rng.sample(peers, min(len(peers), rng.randint(1, 3)))]
        for dimension, role, assessor in periodic:
            self._assessment(e, dimension, role, assessor, self._work_moment(*close), period)
        spot = [("training", "supervisor", supervisor)] * rng.randint(1, 2)
        spot += [("knowledge", rng.choice(("supervisor", "peer")), supervisor)
                 for _ in range(_poisson(rng, 1.2))]
        if rng.random() < 0.3:
            spot.append(("compliance", "supervisor", supervisor))  # a spot audit
        for dimension, role, assessor in spot:
            self._assessment(e, dimension, role, assessor, self._work_moment(*month), None)

    def _assessment(self, e: Engineer, dimension: str, role: str, assessor: str, at: int,
                    period: str | None) -> None:
        rng = self.rng
        quality = self.skills[e.engineer_id].quality
        score = 76 + 8 * quality + rng.gauss(0, 6) + (5 if role == "self" else 0)
        event = {"engineer_id": e.engineer_id, "dimension": dimension,
                 "score": round(max(0.0, min(100.0, score)), 1), "assessor_role": role}
        if rng.random() < 0.9:
            event["assessor_id"] = assessor
        if period:
            event["period"] = period
        if rng.random() < 0.2:
            event["comment"] = rng.choice(ASSESSMENT_COMMENTS)
        self._emit(at, "assessment-recorded", event, "hr-system")

    def _months(self):
        """(first instant, end) of each calendar month's part inside the window."""
        day, last = self.start_date, self.start_date + timedelta(days=self.days)
        while day < last:
            following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            yield _local_ts(day, self.tz), _local_ts(min(following, last), self.tz)
            day = following

    # --- time -------------------------------------------------------------------------------

    def _local(self, ts: int) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def _desk_time(self, ts: int, priority: str = "P3") -> int:
        """The instant the service desk acts: now in desk hours (or for P1), else next morning."""
        local = self._local(ts)
        if priority == "P1" or DESK_HOURS[0] <= local.hour < DESK_HOURS[1]:
            return ts
        day = local.date() + timedelta(days=1 if local.hour >= DESK_HOURS[1] else 0)
        return _local_ts(day, self.tz) + DESK_HOURS[0] * 3600 + self.rng.randrange(2400)

    def _field_time(self, ts: int, t: Ticket) -> int:
        """Field visits happen 08:00-19:00 unless the ticket is P1."""
        local = self._local(ts)
        if t.priority == "P1" or 8 <= local.hour < 19:
            return ts
        day = local.date() + timedelta(days=1 if local.hour >= 19 else 0)
        return _local_ts(day, self.tz) + 8 * 3600 + self.rng.randrange(3600)

    def _weekend(self, ts: int) -> float:
        return 1.6 if self._local(ts).weekday() >= 5 else 1.0

    def _work_moment(self, lo: float, hi: float) -> int:
        """A random working-hours instant (09:00-18:00 local) in [lo, hi)."""
        lo, hi = int(lo), int(min(hi, self.end))
        if hi <= lo:
            return lo
        at = self.rng.randrange(lo, hi)
        local = self._local(at)
        moment = _local_ts(local.date(), self.tz) + 9 * 3600 + self.rng.randrange(9 * 3600)
        return moment if lo <= moment < hi else at

    # --- output -----------------------------------------------------------------------------

    def _emit(self, at: int, topic: str, event: dict, source: str | None) -> bool:
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


def _local_ts(day: date, tz: ZoneInfo) -> int:
    """The epoch second of local midnight starting ``day``."""
    return int(datetime.combine(day, time(), tz).timestamp())


def _customer_id(customer: int) -> str:
    return f"C{customer + 1:05d}"


def _role_team_slots(n: int, teams: list[str]) -> list[tuple[str, str]]:
    """Roles in their shares (each present when n >= 3), spread round-robin over the teams."""
    counts = {role: max(1 if n >= 3 else 0, round(n * share)) for role, share in ROLE_SHARE.items()}
    counts["field_engineer"] = max(0, n - counts["support_specialist"] - counts["service_rep"])
    if n < 3:
        counts = {role: int(i < n) for i, role in enumerate(ROLES)}
    roles = [role for role in ROLES for _ in range(counts[role])]
    return [(role, teams[i % len(teams)]) for i, role in enumerate(roles)]


def _names(rng: random.Random, n: int) -> list[str]:
    names, seen = [], set()
    for _ in range(n):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        for _retry in range(5):
            if name not in seen:
                break
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        seen.add(name)
        names.append(name)
    return names


def _role_fit(channel: str, onsite: bool) -> dict[str, float]:
    """How strongly dispatch prefers each role as the assignee of a ticket."""
    if channel == "onsite":
        return {"field_engineer": 1.0, "support_specialist": 0.01, "service_rep": 0.01}
    desk = channel in ("phone", "chat")
    return {"field_engineer": 4.0 if onsite else 0.15, "support_specialist": 1.5 if desk else 2.0,
            "service_rep": 2.0 if desk else 1.0}


def _cumulative(weights):
    total = 0.0
    for w in weights:
        total += w
        yield total


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:  # normal approximation, fine for daily volumes
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
