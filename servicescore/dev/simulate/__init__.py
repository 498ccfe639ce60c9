"""Seeded, realistic after-sales traffic for every topic of the event contract (events.md).

One ``random.Random(seed)`` drives everything, so the same arguments give byte-identical output.
The world: customers (larger accounts call more, each has a usual fault category) open tickets with
business-hour peaks in the local timezone; engineers of three roles in several teams differ in a
hidden skill that makes them faster or slower, reopen and escalate less or more, and please
customers more or less. Tickets run through first response, escalations, field visits,
resolution, reopens (new episodes) and surveys; complaints and assessments complete the picture.
Lifecycle events stay inside ``[start, start + days)``; the tickets they cut off are the backlog.
Follow-ups (surveys, reopens) may spill past the end, as they do in a real month.

The parts: ``world`` (the numbers and words), ``staff`` and ``customers``, ``clock`` (when people
act), ``department`` (arrivals and the event log), ``ticket`` (one ticket's life), ``voice``
(surveys, complaints), ``assessments``, ``writers`` (JSON Lines and the roster CSV).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from servicescore.dev.simulate.department import Department
from servicescore.dev.simulate.staff import Engineer
from servicescore.dev.simulate.writers import write_jsonl, write_roster_csv

__all__ = ["Engineer", "Traffic", "simulate", "write_jsonl", "write_roster_csv"]


@dataclass
class Traffic:
    roster: list[Engineer]
    records: list[tuple[str, dict]]  # (topic, event) in event-time order


def simulate(start: date, days: int, engineers: int, seed: int = 1,
             timezone: str = "Asia/Shanghai", tickets_per_day: float | None = None) -> Traffic:
    """A month (or any span) of after-sales traffic; ``tickets_per_day`` is the working-day rate
    (default 6.5 per engineer), weekends get fewer."""
    if days < 1 or engineers < 1:
        raise ValueError("days and engineers must be at least 1")
    department = Department(start, days, engineers, seed, ZoneInfo(timezone), tickets_per_day)
    return Traffic(department.roster, department.records())
