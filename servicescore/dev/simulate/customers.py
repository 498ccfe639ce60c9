"""The customer base: larger accounts call more, each customer has a usual fault category and a
team serving its region."""

from __future__ import annotations

import random
from dataclasses import dataclass

from servicescore.dev.simulate.chance import cumulative
from servicescore.dev.simulate.world import CATEGORIES


@dataclass(frozen=True)
class CustomerBase:
    cum_weights: list[float]  # how often each customer calls, cumulated for ``choices``
    home_category: list[str]  # the fault each customer usually has
    team: list[str]  # the team serving the customer's region

    @classmethod
    def of(cls, rng: random.Random, expected_tickets: float, teams: list[str]) -> CustomerBase:
        count = max(50, int(expected_tickets * 8))  # most customers need no help in a given month
        weights = [1 / (i + 1) ** 0.3 for i in range(count)]  # larger accounts call more
        cats = list(CATEGORIES)
        cat_weights = [share for share, _, _ in CATEGORIES.values()]
        home = rng.choices(cats, cat_weights, k=count)
        team = [rng.choice(teams) for _ in range(count)]
        return cls(list(cumulative(weights)), home, team)

    def pick(self, rng: random.Random) -> int:
        """A customer who calls, the larger accounts more often."""
        return rng.choices(range(len(self.cum_weights)), cum_weights=self.cum_weights)[0]

    def category_of(self, rng: random.Random, customer: int) -> str:
        if rng.random() < 0.6:
            return self.home_category[customer]
        cats = list(CATEGORIES)
        return rng.choices(cats, [share for share, _, _ in CATEGORIES.values()])[0]


def customer_id(customer: int) -> str:
    return f"C{customer + 1:05d}"
