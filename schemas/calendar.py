"""The working calendar: how many working seconds lie between two instants.

Working hours are per weekday in the business timezone; holidays have none; make-up workdays
(调休, a weekend day worked in exchange for a holiday) use Monday's hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def default_hours() -> dict[str, list[str]]:
    """Monday to Friday, 09:00-18:00."""
    return {d: ["09:00-18:00"] for d in DAY_NAMES[:5]}


@dataclass(frozen=True)
class WorkCalendar:
    timezone: str = "Asia/Shanghai"
    # weekday name -> list of "HH:MM-HH:MM" spans
    hours: dict[str, list[str]] = field(default_factory=default_hours)
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    # local date ordinal -> its working spans as UTC epoch-ms pairs: a day's hours are parsed
    # and placed in the timezone once, not on every duration (the worker computes two or three
    # per event).
    _days: dict[int, tuple[tuple[int, int], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def spans(self, day: date) -> list[tuple[time, time]]:
        """The working spans of one local date."""
        if day in self.holidays:
            return []
        name = "mon" if day in self.workdays else DAY_NAMES[day.weekday()]
        return [_span(text) for text in self.hours.get(name, [])]

    def working_seconds(self, start_ms: int, end_ms: int) -> float:
        """Working seconds in [start, end); 0 when end <= start."""
        if end_ms <= start_ms:
            return 0.0
        zone = ZoneInfo(self.timezone)
        day = datetime.fromtimestamp(start_ms / 1000, zone).date().toordinal()
        last = datetime.fromtimestamp(end_ms / 1000, zone).date().toordinal()
        total = 0
        while day <= last:
            for opens, closes in self._day_ms(day, zone):
                lo, hi = max(start_ms, opens), min(end_ms, closes)
                if hi > lo:
                    total += hi - lo
            day += 1
        return total / 1000

    def _day_ms(self, ordinal: int, zone: ZoneInfo) -> tuple[tuple[int, int], ...]:
        spans = self._days.get(ordinal)
        if spans is None:
            day = date.fromordinal(ordinal)
            spans = tuple((_epoch_ms(_instant(day, opens, zone)),
                           _epoch_ms(_instant(day, closes, zone)))
                          for opens, closes in self.spans(day))
            self._days[ordinal] = spans
        return spans


def _epoch_ms(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _span(text: str) -> tuple[time, time]:
    opens, closes = text.split("-")
    return _clock(opens), _clock(closes)


def _clock(text: str) -> time:
    hour, minute = (int(part) for part in text.split(":"))
    return time.max if hour == 24 else time(hour, minute)


def _instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    if clock == time.max:  # 24:00 is the next midnight
        return datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return datetime.combine(day, clock, zone).astimezone(UTC)
