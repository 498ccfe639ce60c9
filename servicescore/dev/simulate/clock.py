"""When people act: the service desk's hours, field visits by day, slower weekends, working
hours for reviews and complaints. All in the business timezone."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from servicescore.dev.simulate.world import DESK_HOURS


def local_ts(day: date, tz: ZoneInfo) -> int:
    """The epoch second of local midnight starting ``day``."""
    return int(datetime.combine(day, time(), tz).timestamp())


class Clock:
    def __init__(self, tz: ZoneInfo, rng: random.Random, end: int):
        self.tz, self.rng, self.end = tz, rng, end

    def local(self, ts: int) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def desk_time(self, ts: int, priority: str = "P3") -> int:
        """The instant the service desk acts: now in desk hours (or for P1), else next morning."""
        local = self.local(ts)
        if priority == "P1" or DESK_HOURS[0] <= local.hour < DESK_HOURS[1]:
            return ts
        day = local.date() + timedelta(days=1 if local.hour >= DESK_HOURS[1] else 0)
        return local_ts(day, self.tz) + DESK_HOURS[0] * 3600 + self.rng.randrange(2400)

    def field_time(self, ts: int, priority: str) -> int:
        """Field visits happen 08:00-19:00 unless the ticket is P1."""
        local = self.local(ts)
        if priority == "P1" or 8 <= local.hour < 19:
            return ts
        day = local.date() + timedelta(days=1 if local.hour >= 19 else 0)
        return local_ts(day, self.tz) + 8 * 3600 + self.rng.randrange(3600)

    def weekend(self, ts: int) -> float:
        return 1.6 if self.local(ts).weekday() >= 5 else 1.0

    def work_moment(self, lo: float, hi: float) -> int:
        """A random working-hours instant (09:00-18:00 local) in [lo, hi)."""
        lo, hi = int(lo), int(min(hi, self.end))
        if hi <= lo:
            return lo
        at = self.rng.randrange(lo, hi)
        local = self.local(at)
        moment = local_ts(local.date(), self.tz) + 9 * 3600 + self.rng.randrange(9 * 3600)
        return moment if lo <= moment < hi else at
