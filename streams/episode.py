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
    first_response: dict | None
    onsite: dict | None
    reopens: list[int]  # times of every reopen record, effective or not
    escalations: list[tuple[dict, int]]  # (record, episode number or 0 for none)
    surveys: list[dict]

    @property
    def is_open(self) -> bool:
        return self.episodes[-1].resolution is None

    def resolutions(self) -> list[Episode]:
        return [e for e in self.episodes if e.resolution is not None]


def walk(opened: dict, events: list[dict]) -> Lifecycle:
    """The lifecycle of a ticket whose ordered events include its opened record."""
    life = Lifecycle(opened, [Episode(1, opened["t"])], None, None, [], [], [])
    for rec in events:
        step = _STEPS.get(rec["k"])
        if step is not None:
            step(life, rec)
    return life


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


def _onsite(life: Lifecycle, rec: dict) -> None:
    if life.onsite is None:
        life.onsite = rec


def _resolved(life: Lifecycle, rec: dict) -> None:
    current = life.episodes[-1]
    if current.resolution is None:
        current.resolution = rec


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
