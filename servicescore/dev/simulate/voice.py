"""The customers' voice: surveys after a resolution (CSAT, NPS, a comment) and complaints, about
a ticket or about an engineer's conduct."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from servicescore.dev.simulate.chance import poisson
from servicescore.dev.simulate.world import (
    COMPLAINT_REASONS,
    DAY,
    NPS_RANGE,
    SURVEY_COMMENTS,
    SURVEY_SHARE,
)

if TYPE_CHECKING:
    from servicescore.dev.simulate.department import Department
    from servicescore.dev.simulate.staff import Engineer
    from servicescore.dev.simulate.ticket import Ticket


class Voice:
    def __init__(self, department: Department):
        self.dept = department
        self.rng, self.clock, self.skills = department.rng, department.clock, department.skills

    def survey(self, t: Ticket) -> None:
        rng = self.rng
        if not t.resolutions or rng.random() >= SURVEY_SHARE:
            return
        resolved, engineer = t.resolutions[0]
        at = self.clock.desk_time(resolved + int(rng.lognormvariate(math.log(7200), 1.0)))
        if any(r <= at for r in t.reopens):  # reopened before answering: asked after the last fix
            resolved, engineer = t.resolutions[-1]
            at = self.clock.desk_time(resolved + int(rng.lognormvariate(math.log(7200), 1.0)))
        csat = self._csat(t, engineer)
        event = {"ticket_id": t.ticket_id, "csat": csat}
        if rng.random() < 0.85:
            event["nps"] = rng.randint(*NPS_RANGE[csat])
        if rng.random() < 0.35:
            mood = "good" if csat >= 4 else "fair" if csat == 3 else "poor"
            event["comment"] = rng.choice(SURVEY_COMMENTS[mood])
        self.dept.emit(at, "survey-submitted", event, "survey-platform")
        if csat <= 2 and rng.random() < 0.3:
            self._complaint(at + rng.randrange(1800, 2 * DAY), engineer, t, csat == 1)

    def _csat(self, t: Ticket, engineer: Engineer) -> int:
        score = (4.15 + self.skills[engineer.engineer_id].csat - 0.7 * len(t.reopens)
                 - 0.4 * (t.escalations > 0) - 0.5 * t.response_late + self.rng.gauss(0, 0.8))
        return max(1, min(5, round(score)))

    def ticket_complaint(self, t: Ticket) -> None:
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
        self.dept.emit(at, "complaint-filed", event, "callcenter")

    def background_complaints(self) -> None:
        """Complaints about conduct that name no ticket (a call, a visit, a rude message)."""
        dept = self.dept
        for e in dept.roster:
            factor = self.skills[e.engineer_id].complaint * (1.5 if e.role == "service_rep" else 1)
            for _ in range(poisson(self.rng, 0.4 * factor * dept.days / 30)):
                at = self.clock.work_moment(dept.start, min(dept.end, dept.leaves[e.engineer_id]))
                self._complaint(at, e, None, False)
