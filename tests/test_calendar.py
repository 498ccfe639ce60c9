"""Working seconds (schemas/calendar.py) equal a plain walk over the local days.

The calendar keeps each local day's working spans as epoch milliseconds (computed once per day);
the reference below places the spans in the timezone anew for every day of every call, as the
first version did. Both must agree to the millisecond, across weekends, holidays, make-up
workdays, a span to 24:00 and a timezone with daylight saving time.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas.calendar import WorkCalendar


def reference(calendar: WorkCalendar, start_ms: int, end_ms: int) -> float:
    if end_ms <= start_ms:
        return 0.0
    zone = ZoneInfo(calendar.timezone)
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    total = timedelta()
    day = start.astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        for opens, closes in calendar.spans(day):
            after = closes == time.max
            lo = max(start, datetime.combine(day, opens, zone).astimezone(UTC))
            hi = min(end, datetime.combine(day + timedelta(days=after), time(0) if after
                                           else closes, zone).astimezone(UTC))
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total / timedelta(milliseconds=1) / 1000


CALENDARS = [
    WorkCalendar(),
    WorkCalendar("Europe/Berlin", {"mon": ["08:00-12:00", "13:00-17:30"],
                                   "sat": ["22:00-24:00"], "sun": ["00:00-02:00"]},
                 holidays=frozenset({date(2026, 3, 30)}), workdays=frozenset({date(2026, 3, 28)})),
    WorkCalendar("America/New_York", {d: ["00:00-24:00"] for d in ("mon", "tue", "sun")}),
]


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c.timezone)
def test_working_seconds_equal_the_day_by_day_walk(calendar):
    rng = random.Random(7)
    base = int(datetime(2026, 3, 20, tzinfo=UTC).timestamp() * 1000)  # spans DST in March
    for _ in range(3000):
        start = base + rng.randrange(0, 20 * 86_400_000)
        end = start + rng.choice([rng.randrange(-3_600_000, 3_600_000),
                                  rng.randrange(0, 3 * 86_400_000),
                                  rng.randrange(0, 40 * 86_400_000)])
        assert calendar.working_seconds(start, end) == reference(calendar, start, end), (
            start, end)


def test_a_calendar_is_still_compared_by_its_settings():
    assert WorkCalendar() == WorkCalendar()
    first = WorkCalendar()
    first.working_seconds(0, 86_400_000 * 3)  # fills its cache of days
    assert first == WorkCalendar()
