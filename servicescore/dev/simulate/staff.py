"""The engineers: three roles in their shares, spread over teams, each with a hidden skill that
makes them faster or slower, reopen and escalate less or more, and please customers more or less."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from schemas.roster import ROLES

ROLE_SHARE = {"field_engineer": 0.4, "support_specialist": 0.35, "service_rep": 0.25}
TEAM_NAMES = ("north", "south", "east", "west", "central", "metro", "enterprise", "retail")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "强", "军", "洋", "勇", "艳", "杰", "涛", "明",
         "超", "秀英", "建华", "志强", "晓东", "海燕", "文博", "雨桐", "子涵", "浩然")


@dataclass(frozen=True)
class Engineer:
    engineer_id: str
    name: str
    role: str
    team_id: str
    active: bool = True


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


def teams_of(n: int) -> list[str]:
    """About seven engineers a team, one team for fewer than four."""
    count = 1 if n < 4 else min(max(2, round(n / 7)), 24)
    return [f"team-{TEAM_NAMES[i]}" if i < len(TEAM_NAMES) else f"team-{i + 1}"
            for i in range(count)]


def role_team_slots(n: int, teams: list[str]) -> list[tuple[str, str]]:
    """Roles in their shares (each present when n >= 3), spread round-robin over the teams."""
    counts = {role: max(1 if n >= 3 else 0, round(n * share)) for role, share in ROLE_SHARE.items()}
    counts["field_engineer"] = max(0, n - counts["support_specialist"] - counts["service_rep"])
    if n < 3:
        counts = {role: int(i < n) for i, role in enumerate(ROLES)}
    roles = [role for role in ROLES for _ in range(counts[role])]
    return [(role, teams[i % len(teams)]) for i, role in enumerate(roles)]


def names(rng: random.Random, n: int) -> list[str]:
    found, seen = [], set()
    for _ in range(n):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        for _retry in range(5):
            if name not in seen:
                break
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        seen.add(name)
        found.append(name)
    return found
