"""Argument types the command families share: a bad value is refused by argparse, in one line."""

from __future__ import annotations

import argparse
from datetime import date

MAX_LIMIT = 10_000  # the API's bound too


def bounded(low: int, high: int):
    """An argparse type: an integer in [low, high], written in ASCII digits (int() would also
    read other scripts' digits, and str.isdigit accepts '²', which int() refuses)."""

    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}: {text!r}")
        return int(text)

    return parse


limit = bounded(1, MAX_LIMIT)


def day(text: str) -> date:
    from schemas.period import FIRST_YEAR, LAST_YEAR

    try:
        found = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    if not FIRST_YEAR <= found.year <= LAST_YEAR - 10:  # room for --days after it
        raise argparse.ArgumentTypeError(f"a date from {FIRST_YEAR} to {LAST_YEAR - 10}: {text!r}")
    return found
