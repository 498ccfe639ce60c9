"""Random draws the standard library lacks, on the simulation's one seeded generator."""

from __future__ import annotations

import math
import random


def cumulative(weights):
    total = 0.0
    for w in weights:
        total += w
        yield total


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:  # normal approximation, fine for daily volumes
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
