"""Episodes: a ticket's life read from its ordered events (kpis.md, "Ticket episodes").

Episode 1 starts at the opened event; each reopen while resolved starts the next; the next
resolve while open ends it. The walk starts *open in episode 1* whatever the times say, so a
resolution timed before its opened (clock skew) still ends episode 1 (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Episode:
    number: int
    start_ms: int
    resolution: dict | None = None  # the resolved record that ended it
    escalations: list[dict] = field(default_factory=list)


@dataclass
class Lifecycle:
    opened: dict
    episodes: list[Episode]
    first_response: dict | None = None
    onsite: dict | None = None
    reopens: list[int] = field(default_factory=list)  # every reopen's time, in order
    escalations: list[tuple[dict, int]] = field(default_factory=list)  # (record, episode or 0)
    surveys: list[dict] = field(default_factory=list)
    # Kept as the walk goes, so that a lookup never scans the ticket's history:
    resolved_times: list[int] = field(default_factory=list)  # of each resolution, in order
    resolvers: list[str] = field(default_factory=list)  # the engineer of each resolution
    target: str | None = None  # the last escalation's to_engineer_id (the backlog owner)
    # The ticket row's first-response and onsite columns (streams/facts.py), computed once:
    # only a full walk changes the opened, the first response or the onsite arrival.
    timing: dict | None = None

    @property
    def is_open(self) -> bool:
        return self.episodes[-1].resolution is None

    def resolutions(self) -> list[Episode]:
        return [e for e in self.episodes if e.resolution is not None]


def walk(opened: dict, events: list[dict]) -> Lifecycle:
    """The lifecycle of a ticket whose ordered events include its opened record."""
    life = Lifecycle(opened, [Episode(1, opened["t"])])
    for rec in events:
        step(life, rec)
    return life


def step(life: Lifecycle, rec: dict) -> None:
    """One more event, later in the ticket event order than every event walked so far."""
    advance = _STEPS.get(rec["k"])
    if advance is not None:
        advance(life, rec)


def _first_response(life: Lifecycle, rec: dict) -> None:
    if life.first_response is None:
        life.first_response = rec


def _escalated(life: Lifecycle, rec: dict) -> None:
    current = life.episodes[-1]
    if current.resolution is None:
        current.escalations.append(rec)
        life.escalations.append((rec, current.number))
    else:
        life.escalations.append((rec, 0))
    life.target = rec.get("to_engineer_id") or life.target


def _onsite(life: Lifecycle, rec: dict) -> None:
    if life.onsite is None:
        life.onsite = rec


def _resolved(life: Lifecycle, rec: dict) -> None:
    current = life.episodes[-1]
    if current.resolution is None:
        current.resolution = rec
        life.resolved_times.append(rec["t"])
        life.resolvers.append(rec["engineer_id"])


def _reopened(life: Lifecycle, rec: dict) -> None:
    life.reopens.append(rec["t"])
    current = life.episodes[-1]
    if current.resolution is not None:
        life.episodes.append(Episode(current.number + 1, rec["t"]))


def _survey(life: Lifecycle, rec: dict) -> None:
    life.surveys.append(rec)


_STEPS = {
    "first_response": _first_response,
    "escalated": _escalated,
    "onsite_arrived": _onsite,
    "resolved": _resolved,
    "reopened": _reopened,
    "survey": _survey,
}
