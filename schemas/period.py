"""Appraisal periods (``2026-11``, ``2026-Q4``, ``2026``) as half-open instants in the business
timezone: ``2026-11`` is [2026-11-01T00:00+08:00, 2026-12-01T00:00+08:00) in Asia/Shanghai.

The one place for the period syntax and for reading the window bounds a user gives (CLI flags,
HTTP query parameters)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.errors import ServicescoreError

# ``\d`` takes any script's decimal digits (２０２６), as the events' schema does; int() reads
# them all. '²' is no decimal digit: it never matches.
_PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")
# ClickHouse DateTime64's range, the same bound the events' times have (docs/decisions.md).
FIRST_YEAR, LAST_YEAR = 1900, 2299
MIN_MS = int(datetime.fromisoformat(f"{FIRST_YEAR}-01-01T00:00:00+00:00").timestamp() * 1000)
MAX_MS = int(datetime.fromisoformat(f"{LAST_YEAR + 1}-01-01T00:00:00+00:00").timestamp() * 1000)
_INSTANT_HELP = "use 2026-11-01, 2026-11-01T09:00+08:00, or a period: 2026-11, 2026-Q4, 2026"


@dataclass(frozen=True)
class Period:
    name: str
    kind: str  # month, quarter, year
    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    def previous(self) -> str:
        """The name of the period of the same kind just before this one."""
        year, month = self.start.year, self.start.month
        if self.kind == "year":
            return f"{year - 1}"
        if self.kind == "quarter":
            quarter = (month - 1) // 3 + 1
            return f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}"
        return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def is_period(text: str) -> bool:
    return _PERIOD.match(text) is not None


def parse_period(name: str, timezone: str) -> Period:
    match = _PERIOD.match(name)
    if not match:
        raise ServicescoreError(f"bad period {name!r} (use 2026-11, 2026-Q4 or 2026)")
    year, month, quarter = match.groups()
    y = int(year)
    if not FIRST_YEAR <= y <= LAST_YEAR:
        raise ServicescoreError(f"period {name!r} is outside the years {FIRST_YEAR}-{LAST_YEAR}")
    if month:
        first, months, kind = int(month), 1, "month"
    elif quarter:
        first, months, kind = 3 * int(quarter) - 2, 3, "quarter"
    else:
        first, months, kind = 1, 12, "year"
    zone = ZoneInfo(timezone)
    end_index = first - 1 + months
    start = datetime(y, first, 1, tzinfo=zone)
    end = datetime(y + end_index // 12, end_index % 12 + 1, 1, tzinfo=zone)
    return Period(name, kind, start, end)


def parse_instant(text: str, timezone: str) -> int:
    """A CLI/API instant as UTC epoch ms: RFC 3339 with offset, a date-time without offset or a
    date (both read in the business timezone), or a period name (its start).

    A bare number that is not a year is refused: read as epoch milliseconds, ``2025`` silently
    meant 1970."""
    text = text.strip()
    if is_period(text):
        return parse_period(text, timezone).start_ms
    if text.isdigit():
        raise ServicescoreError(f"bad time {text!r}: a bare number is neither a time nor a "
                                f"period ({_INSTANT_HELP})")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ServicescoreError(f"bad time {text!r} ({_INSTANT_HELP})") from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ServicescoreError(f"time {text!r} is outside the years {FIRST_YEAR}-{LAST_YEAR}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return int(moment.timestamp() * 1000)


def parse_window(start: str | None, end: str | None, period: str | None, timezone: str,
                 flag: str = "--") -> tuple[int, int]:
    """[from, to) in epoch ms from either both bounds or one period (its whole span).

    ``flag`` is how the caller spells its parameter names in messages (``--`` for the CLI's
    ``--from``, empty for the API's ``from``)."""
    if period is not None:
        if start is not None or end is not None:
            raise ServicescoreError(f"give {flag}period or {flag}from/{flag}to, not both")
        chosen = parse_period(period.strip(), timezone)
        return chosen.start_ms, chosen.end_ms
    if start is None or end is None:
        raise ServicescoreError(f"give {flag}from and {flag}to, or {flag}period")
    lo, hi = parse_instant(start, timezone), parse_instant(end, timezone)
    if hi <= lo:
        raise ServicescoreError(f"{flag}to must be after {flag}from")
    return lo, hi


def format_instant(ms: int | None, timezone: str) -> str | None:
    """UTC epoch ms as an RFC 3339 time in the business timezone (for people)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(timezone)).isoformat(timespec="seconds")
