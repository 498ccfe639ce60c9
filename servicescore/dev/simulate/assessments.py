"""People's assessments of each active engineer: the month-end reviews (supervisor, self, peers,
customers, subordinates of a team lead) and spot checks during the month."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from servicescore.dev.simulate.chance import poisson
from servicescore.dev.simulate.clock import local_ts
from servicescore.dev.simulate.world import ASSESSMENT_COMMENTS, DAY

if TYPE_CHECKING:
    from servicescore.dev.simulate.department import Department
    from servicescore.dev.simulate.staff import Engineer


def assess(dept: Department) -> None:
    leads = {}
    for e in dept.roster:
        leads.setdefault(e.team_id, e)
    for month_start, month_end in months(dept):
        period = datetime.fromtimestamp(month_start, dept.tz).strftime("%Y-%m")
        close = max(month_start, month_end - 5 * DAY)  # reviews are written at month end
        for e in dept.roster:
            if e.active:
                _assess_month(dept, e, leads[e.team_id] is e, period, (close, month_end),
                              (month_start, month_end))


def _assess_month(dept: Department, e: Engineer, lead: bool, period: str, close, month) -> None:
    rng = dept.rng
    peers = [p for p in dept.roster if p.team_id == e.team_id and p is not e] or [e]
    supervisor = f"MGR-{e.team_id}"
    periodic = [(dimension, "supervisor", supervisor)
                for dimension in ("compliance", "attitude", "review360")]
    periodic.append(("review360", "self", e.engineer_id))
    periodic += [("collaboration", "peer", rng.choice(peers).engineer_id) for _ in range(2)]
    periodic += [("review360", "peer", p.engineer_id)
                 for p in rng.sample(peers, min(len(peers), rng.randint(2, 3)))]
    periodic += [("review360", "customer", dept.customer_id())
                 for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.5:
        periodic.append(("attitude", "customer", dept.customer_id()))
    if lead:
        periodic += [("review360", "subordinate", p.engineer_id)
                     for p in rng.sample(peers, min(len(peers), rng.randint(1, 3)))]
    for dimension, role, assessor in periodic:
        _assessment(dept, e, dimension, role, assessor, dept.clock.work_moment(*close), period)
    spot = [("training", "supervisor", supervisor)] * rng.randint(1, 2)
    spot += [("knowledge", rng.choice(("supervisor", "peer")), supervisor)
             for _ in range(poisson(rng, 1.2))]
    if rng.random() < 0.3:
        spot.append(("compliance", "supervisor", supervisor))  # a spot audit
    for dimension, role, assessor in spot:
        _assessment(dept, e, dimension, role, assessor, dept.clock.work_moment(*month), None)


def _assessment(dept: Department, e: Engineer, dimension: str, role: str, assessor: str,
                at: int, period: str | None) -> None:
    rng = dept.rng
    quality = dept.skills[e.engineer_id].quality
    score = 76 + 8 * quality + rng.gauss(0, 6) + (5 if role == "self" else 0)
    event = {"engineer_id": e.engineer_id, "dimension": dimension,
             "score": round(max(0.0, min(100.0, score)), 1), "assessor_role": role}
    if rng.random() < 0.9:
        event["assessor_id"] = assessor
    if period:
        event["period"] = period
    if rng.random() < 0.2:
        event["comment"] = rng.choice(ASSESSMENT_COMMENTS)
    dept.emit(at, "assessment-recorded", event, "hr-system")


def months(dept: Department):
    """(first instant, end) of each calendar month's part inside the window."""
    day, last = dept.start_date, dept.start_date + timedelta(days=dept.days)
    while day < last:
        following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        yield local_ts(day, dept.tz), local_ts(min(following, last), dept.tz)
        day = following
