"""Appraisal periods (``2026-11``, ``2026-Q4``, ``2026``) as half-open instants in the business
timezone: ``2026-11`` is [2026-11-01T00:00+08:00, 2026-12-01T00:00+08:00) in Asia/Shanghai."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from servicescore.errors import ServicescoreError

_PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")


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


def parse_period(name: str, timezone: str) -> Period:
    match = _PERIOD.match(name)
    if not match:
        raise ServicescoreError(f"bad period {name!r} (use 2026-11, 2026-Q4 or 2026)")
    year, month, quarter = match.groups()
    zone = ZoneInfo(timezone)
    y = int(year)
    if month:
        first, months, kind = int(month), 1, "month"
    elif quarter:
        first, months, kind = 3 * int(quarter) - 2, 3, "quarter"
    else:
        first, months, kind = 1, 12, "year"
    end_index = first - 1 + months
    start = datetime(y, first, 1, tzinfo=zone)
    end = datetime(y + end_index // 12, end_index % 12 + 1, 1, tzinfo=zone)
    return Period(name, kind, start, end)


def parse_instant(text: str, timezone: str) -> int:
    """A CLI/API instant as UTC epoch ms: RFC 3339 with offset, a date-time without offset or a
    date (both read in the business timezone), a period name (its start), or epoch ms."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if _PERIOD.match(text) and not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return parse_period(text, timezone).start_ms
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ServicescoreError(
            f"bad time {text!r} (use 2026-11-01, 2026-11-01T09:00+08:00 or 2026-11)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return int(moment.timestamp() * 1000)


def format_instant(ms: int | None, timezone: str) -> str | None:
    """UTC epoch ms as an RFC 3339 time in the business timezone (for people)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(timezone)).isoformat(timespec="seconds")
