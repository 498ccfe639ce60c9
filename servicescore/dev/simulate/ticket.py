"""One ticket's life: opened, first response, escalations, field visits, resolution and reopens
(each a new episode), until it stays resolved or the window ends (then it is backlog)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from servicescore.dev.simulate.customers import customer_id
from servicescore.dev.simulate.staff import Engineer
from servicescore.dev.simulate.world import (
    CATEGORIES,
    CHANNEL_RESPONSE,
    CHANNELS,
    DAY,
    ESCALATION_REASONS,
    ONSITE_MEDIAN_S,
    PRIORITIES,
    PRIORITY_ESCALATION,
    PRIORITY_HANDLING,
    PRODUCTS,
    REOPEN_REASONS,
    RESOLUTION_CODES,
    RESPONSE_MEDIAN_S,
    RESPONSE_TARGET_S,
    SOURCES,
)

if TYPE_CHECKING:
    from servicescore.dev.simulate.department import Department
    from servicescore.dev.simulate.voice import Voice


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


class TicketLife:
    def __init__(self, department: Department, voice: Voice):
        self.dept, self.voice = department, voice
        self.rng, self.clock, self.skills = department.rng, department.clock, department.skills
        self.daily_tickets: dict = {}

    def run(self, at: int, _seq: int, customer: int | None, category: str | None) -> None:
        """One arrival: a new customer's call, or a repeat fault of a known one."""
        customers = self.dept.customers
        customer = customers.pick(self.rng) if customer is None else customer
        category = category or customers.category_of(self.rng, customer)
        t = self._open(at, customer, category)
        self._work(t)
        self.voice.survey(t)
        self.voice.ticket_complaint(t)

    def _open(self, at: int, customer: int, category: str) -> Ticket:
        rng = self.rng
        channel = rng.choices(list(CHANNELS), list(CHANNELS.values()))[0]
        onsite = channel == "onsite" or rng.random() < CATEGORIES[category][1]
        team = (self.dept.customers.team[customer] if rng.random() < 0.85
                else rng.choice(self.dept.teams))
        assignee = self._assignee(at, team, channel, onsite) if rng.random() < 0.94 else None
        t = Ticket(self._ticket_id(at), customer, category,
                   rng.choices(list(PRIORITIES), list(PRIORITIES.values()))[0], channel, team,
                   assignee, onsite, at)
        event = {"ticket_id": t.ticket_id, "customer_id": customer_id(customer),
                 "channel": channel, "priority": t.priority, "category": category, "team_id": team}
        if assignee:
            event["assignee_id"] = assignee.engineer_id
        if onsite or rng.random() < 0.5:  # the default false is often left out
            event["requires_onsite"] = onsite
        if rng.random() < 0.7:
            event["product"] = rng.choice(PRODUCTS[category])
        self.dept.emit(at, "ticket-opened", event, SOURCES[channel])
        return t

    def _assignee(self, at: int, team: str, channel: str, onsite: bool) -> Engineer:
        """Dispatch prefers the role that fits the ticket but spreads load over the team."""
        pool = self.dept.staff_on(at, team) or self.dept.staff_on(at)
        fit = role_fit(channel, onsite)
        return self.rng.choices(pool, [fit[e.role] for e in pool])[0]

    def _ticket_id(self, at: int) -> str:
        day = datetime.fromtimestamp(at, self.dept.tz).date()
        self.daily_tickets[day] = self.daily_tickets.get(day, 0) + 1
        return f"TK-{self.dept.seed}-{day:%Y%m%d}-{self.daily_tickets[day]:04d}"

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
        rng, clock = self.rng, self.clock
        responder = t.assignee if t.assignee and rng.random() < 0.82 else self.dept.engineer(
            t.opened, t.team_id, "service_rep" if t.channel != "onsite" else "field_engineer")
        median = RESPONSE_MEDIAN_S[t.priority] * CHANNEL_RESPONSE[t.channel]
        delay = rng.lognormvariate(math.log(median * self.skills[responder.engineer_id].speed), 0.8)
        at = clock.desk_time(t.opened, t.priority) + max(30, int(delay * clock.weekend(t.opened)))
        at = clock.desk_time(at, t.priority)
        if rng.random() < 0.04:  # handled straight away without a recorded response
            return at, t.assignee or responder
        if not self.dept.emit(at, "ticket-first-response", {
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
            if not self.dept.emit(at, "ticket-escalated", event, "callcenter"):
                return None
            t.escalations += 1
            handler = target
        return at, handler

    def _escalation_target(self, t: Ticket, at: int, handler: Engineer, tier: int) -> Engineer:
        dept = self.dept
        if t.requires_onsite and self.rng.random() < 0.3:
            return dept.engineer(at, t.team_id, "field_engineer", not_=handler)
        if tier == 2 and handler.role != "support_specialist":
            return dept.engineer(at, t.team_id, "support_specialist", not_=handler)
        other = [team for team in dept.teams if team != handler.team_id] or dept.teams
        return dept.engineer(at, self.rng.choice(other), "support_specialist", not_=handler)

    def _onsite_visit(self, t: Ticket, at: int, handler: Engineer):
        rng = self.rng
        engineer = handler if handler.role == "field_engineer" else self.dept.engineer(
            at, t.team_id, "field_engineer")
        if t.channel == "onsite" and not t.resolutions:  # opened by the engineer on site
            arrive = at + rng.randrange(60, 900)
        else:
            travel = ONSITE_MEDIAN_S[t.priority] * self.skills[engineer.engineer_id].speed
            arrive = max(at + rng.randrange(300, 1800), self.clock.field_time(
                at + int(rng.lognormvariate(math.log(travel), 0.7)), t.priority))
        event = {"ticket_id": t.ticket_id, "engineer_id": engineer.engineer_id}
        ok = self.dept.emit(arrive, "ticket-onsite-arrived", event, "field-app")
        return (arrive, engineer) if ok else None

    def _resolve(self, t: Ticket, at: int, handler: Engineer):
        rng = self.rng
        hours = 1.5 if handler.role == "field_engineer" and t.requires_onsite else (
            CATEGORIES[t.category][2] * PRIORITY_HANDLING[t.priority])
        median = hours * 3600 * self.skills[handler.engineer_id].speed
        if rng.random() < 0.015:  # waiting for spare parts or the customer
            median *= 8
        resolved = self.clock.desk_time(
            at + max(300, int(rng.lognormvariate(math.log(median), 0.9))), t.priority)
        source = "field-app" if handler.role == "field_engineer" else "callcenter"
        if not self.dept.emit(resolved, "ticket-resolved", {
                "ticket_id": t.ticket_id, "engineer_id": handler.engineer_id,
                "resolution_code": rng.choice(RESOLUTION_CODES[t.category])}, source):
            return None
        t.resolutions.append((resolved, handler))
        self.dept.schedule_repeat(t.customer, t.category, resolved, handler)
        return resolved, handler

    def _reopen(self, t: Ticket, resolved: int, handler: Engineer):
        rng = self.rng
        if len(t.reopens) >= 2 or rng.random() >= self.skills[handler.engineer_id].reopen:
            return None
        days = rng.uniform(0.1, 6.8) if rng.random() < 0.65 else rng.uniform(7.2, 28)
        at = self.clock.desk_time(resolved + int(days * DAY))
        event = {"ticket_id": t.ticket_id, "reason": rng.choice(REOPEN_REASONS)}
        self.dept.emit(at, "ticket-reopened", event, SOURCES[t.channel])
        t.reopens.append(at)
        if at >= self.dept.end:
            return None
        keep = rng.random() < 0.7 and self.dept.leaves[handler.engineer_id] > at
        next_handler = handler if keep else self.dept.engineer(at, t.team_id, handler.role)
        return at + max(60, int(rng.lognormvariate(math.log(2400), 0.8))), next_handler


def role_fit(channel: str, onsite: bool) -> dict[str, float]:
    """How strongly dispatch prefers each role as the assignee of a ticket."""
    if channel == "onsite":
        return {"field_engineer": 1.0, "support_specialist": 0.01, "service_rep": 0.01}
    desk = channel in ("phone", "chat")
    return {"field_engineer": 4.0 if onsite else 0.15, "support_specialist": 1.5 if desk else 2.0,
            "service_rep": 2.0 if desk else 1.0}
