"""Retiring ticket states by event time (spec README, "Allowed lateness"), as pure rules.

The clock. The event time the processor has seen: the highest ``occurred_at`` processed, times
more than a day ahead of the wall clock ignored (``advance``), taken as a watermark over the
inputs so that no input can run ahead of the others:

- each intake consumer keeps, per source partition, the highest time it routed from it, and
  its watermark is the lowest of those over the partitions that still have unread records
  (the highest over all once none has): an input read faster than another, as a backfill
  reads a sparse topic months ahead of a busy one, does not carry the clock past the events
  still waiting in the others (``watermark``);
- the lifecycle takes the lowest watermark of the intakes it heard from within the last minute
  (``Watermarks``): with several workers, one intake ahead of another does not either.

The clock never goes back. Caught up, every input's records are read and the clock is the
highest time processed, as the spec words it; while inputs are behind it is lower, which only
delays retirement (the safe side).

The rule. A ticket's state is retired once the clock has passed its last event by the longest
look-ahead (30 days) plus the allowed lateness ``L``:

    retire when  clock > last_event + LOOK_AHEAD + L

Why it is exact. Every event within the allowed lateness has ``occurred_at >= clock - L`` when it
is processed (the clock never goes back). So once the ticket is retired, every such event of it
is more than ``LOOK_AHEAD`` after the ticket's last event, and no KPI of the ticket's facts looks
further ahead than that (first-contact and repeat flags look 30 days past a resolution; a survey
is credited by the resolutions before it). Nothing already derived can change. And an event
later than ``L`` is outside the guarantee anyway.

What happens to the events that come after all the same, never silently:
- an event of a ticket with no live state that is later than ``L`` (``too_late``) is
  dead-lettered with the reason ``too_late``: a retired ticket's late events always are, since
  their ``occurred_at`` is before ``clock - L``;
- a retired ticket's event that is on time but beyond the look-ahead (a reopen months later)
  starts a state that waits for its ticket-opened (held, listed by ``servicescore held``); it
  retires by the same rule, and its events are then dead-lettered with the reason ``too_late``
  (``held_letters``).

State written this way stays bounded by the traffic of the last ``LOOK_AHEAD + L`` of event time,
and a restored worker reads only that: a retired ticket's key is deleted, which the compacted
changelog forgets.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

DAY_MS = 86_400_000
LOOK_AHEAD_MS = 30 * DAY_MS  # the longest look-ahead of a KPI (kpis.md: repeat, FCR)
# An occurred_at further ahead of the wall clock than this is a bad clock, not event time.
AHEAD_MS = DAY_MS


def advance(clock_ms: int, occurred_ms: int, now_ms: int) -> int:
    """The clock after an event: one bad timestamp from the future cannot push it."""
    if clock_ms < occurred_ms <= now_ms + AHEAD_MS:
        return occurred_ms
    return clock_ms


def watermark(clock_ms: int, partitions) -> int:
    """An intake's clock after a batch. ``partitions``: (highest time routed from it or None,
    whether it still has unread records) per source partition it owns. A partition behind
    whose times are not known yet holds the clock where it is."""
    highs, behind = [], []
    for high, unread in partitions:
        if unread:
            if high is None:
                return clock_ms
            behind.append(high)
        elif high is not None:
            highs.append(high)
    candidate = min(behind) if behind else max(highs, default=clock_ms)
    return max(clock_ms, candidate)


class Watermarks:
    """The lifecycle's clock: the lowest watermark of the intakes heard from within
    ``live_s`` (an intake that stopped, or has had nothing to send for that long, has
    nothing unread that it could hold back), never going back."""

    def __init__(self, live_s: float = 60.0):
        self.live_s = live_s
        self.heard: dict[str, tuple[int, float]] = {}  # intake -> (its watermark, when)
        self.clock = 0

    def hear(self, intake: str, watermark_ms: int, now_s: float) -> int:
        self.heard[intake] = (watermark_ms, now_s)
        for name, (_, when) in list(self.heard.items()):
            if now_s - when > self.live_s:
                del self.heard[name]
        self.clock = max(self.clock, min(w for w, _ in self.heard.values()))
        return self.clock


def last_event_ms(state: dict) -> int:
    """The latest occurred_at of the ticket (its records are kept in ticket event order)."""
    return state["recs"][-1][1]


def retire_at_ms(state: dict, lateness_ms: int) -> int:
    """The clock past which the state may be retired."""
    return last_event_ms(state) + LOOK_AHEAD_MS + lateness_ms


def due(state: dict, clock_ms: int, lateness_ms: int) -> bool:
    return bool(state["recs"]) and clock_ms > retire_at_ms(state, lateness_ms)


def too_late(occurred_ms: int, clock_ms: int, lateness_ms: int) -> bool:
    """An event of a ticket without live state that arrives later than the allowed lateness."""
    return clock_ms > 0 and occurred_ms < clock_ms - lateness_ms


def too_late_reason(ticket_id: str, occurred_ms: int, clock_ms: int, lateness_ms: int) -> str:
    return (f"too_late: ticket {ticket_id} has no live state and the event is "
            f"{(clock_ms - occurred_ms) / DAY_MS:.1f} days behind the newest event time, more "
            f"than the allowed lateness of {lateness_ms / DAY_MS:g} days "
            "(SERVICESCORE_ALLOWED_LATENESS)")


def held_reason(ticket_id: str, lateness_ms: int) -> str:
    return (f"too_late: ticket {ticket_id} retired before its ticket-opened arrived (waited "
            f"{(LOOK_AHEAD_MS + lateness_ms) / DAY_MS:g} days of event time past its last event)")


# The dead letter of a retired held event names no source partition (it is not kept in the
# state); the letters' partition column is unsigned, so the largest value stands for "none".
NO_PARTITION = 0xFFFFFFFF


def letter_offset(event_id: str) -> int:
    """A stable stand-in offset for the dead letter of a retired held event (its source offset
    is not kept): the same event always gets the same letter, so a repeated retirement after a
    crash replaces its letter instead of adding one."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=7).digest(), "big")


class RetirementIndex:
    """Which keys may be due, by the day their state may retire; per partition.

    Only a hint: an entry is checked against the stored state before anything is retired (the
    ticket may have had events since), so stale entries are harmless. Rebuilt from the store
    after an assignment, when the partition's keys may have changed elsewhere."""

    def __init__(self) -> None:
        self.days: dict[int, dict[int, set[bytes]]] = {}  # partition -> day -> keys

    def known(self, partition: int) -> bool:
        return partition in self.days

    def forget(self, partitions) -> None:
        for partition in partitions:
            self.days.pop(partition, None)

    def start(self, partition: int) -> None:
        self.days[partition] = defaultdict(set)

    def add(self, partition: int, key: bytes, retire_at: int) -> None:
        days = self.days.get(partition)
        if days is not None:
            days[retire_at // DAY_MS].add(key)

    def pop_due(self, partition: int, clock_ms: int) -> set[bytes]:
        """The keys whose retirement day has fully passed, removed from the index."""
        days = self.days.get(partition)
        if not days:
            return set()
        out: set[bytes] = set()
        for day in [d for d in days if (d + 1) * DAY_MS <= clock_ms]:
            out |= days.pop(day)
        return out
