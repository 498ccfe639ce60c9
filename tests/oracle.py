"""Test oracle: the KPIs of kpis.md computed straight from the raw events.

Written apart from the pipeline (it imports nothing of it) and meant to be read: parse and
validate every record, deduplicate by event_id, replay each ticket's events in the ticket event
order through the episode state machine, collect one sample per credited fact, keep the samples
whose credit time lies in [from_ms, to_ms), and aggregate them per engineer (or per team).

The readings where the spec is silent are those of docs/decisions.md. Pure standard library.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000

# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _office_hours() -> dict[int, list[tuple[str, str]]]:
    return {weekday: [("09:00", "18:00")] for weekday in range(5)}


@dataclass(frozen=True)
class OracleConfig:
    timezone: str = "Asia/Shanghai"
    # weekday (0=Mon..6=Sun) -> [(start "HH:MM", end "HH:MM")] in the business timezone
    work_hours: dict[int, list[tuple[str, str]]] = field(default_factory=_office_hours)
    holidays: frozenset[dt.date] = frozenset()  # no working time on these dates
    workdays: frozenset[dt.date] = frozenset()  # make-up working days, with Monday's hours
    frt_targets_s: dict[str, float] = field(
        default_factory=lambda: {"P1": 900, "P2": 3600, "P3": 14400, "P4": 86400})
    aht_targets_s: dict[str, float] = field(
        default_factory=lambda: {"P1": 8 * 3600, "P2": 24 * 3600, "P3": 72 * 3600,
                                 "P4": 168 * 3600})
    onsite_targets_s: dict[str, float] = field(
        default_factory=lambda: {"P1": 4 * 3600, "P2": 8 * 3600, "P3": 24 * 3600, "P4": 72 * 3600})
    sla_clock: str = "calendar"  # or "business"
    review_weights: dict[str, float] = field(default_factory=lambda: {
        "supervisor": 0.4, "peer": 0.3, "customer": 0.2, "subordinate": 0.1, "self": 0.0})


# --------------------------------------------------------------------------------------------
# The event contract (events.md)
# --------------------------------------------------------------------------------------------

OPENED = "ticket-opened"
FIRST_RESPONSE = "ticket-first-response"
ESCALATED = "ticket-escalated"
ONSITE_ARRIVED = "ticket-onsite-arrived"
RESOLVED = "ticket-resolved"
REOPENED = "ticket-reopened"
SURVEY = "survey-submitted"
COMPLAINT = "complaint-filed"
ASSESSMENT = "assessment-recorded"

# ticket event order for equal occurred_at (kpis.md "A ticket's event order")
TICKET_TOPIC_ORDER = {OPENED: 0, FIRST_RESPONSE: 1, ESCALATED: 2, ONSITE_ARRIVED: 3,
                      RESOLVED: 4, REOPENED: 5, SURVEY: 6}

CHANNELS = {"phone", "chat", "email", "web", "onsite"}
PRIORITIES = {"P1", "P2", "P3", "P4"}
SEVERITIES = {"minor", "major"}
DIMENSIONS = ("compliance", "attitude", "collaboration", "training", "knowledge", "review360")
ASSESSOR_ROLES = {"supervisor", "peer", "subordinate", "customer", "self"}

MAX_ID = 128
MAX_TEXT = 4000

# Field kinds: "id" (string 1..128), "text" (string <= 4000), "code" (short string <= 128),
# "bool", "tier" (string <= 128 or integer), "csat", "nps", "score", "period", or a set (enum).
COMMON_OPTIONAL = {"source": "code"}
REQUIRED: dict[str, dict[str, Any]] = {
    OPENED: {"ticket_id": "id", "customer_id": "id", "channel": CHANNELS,
             "priority": PRIORITIES, "category": "id"},
    FIRST_RESPONSE: {"ticket_id": "id", "engineer_id": "id"},
    ESCALATED: {"ticket_id": "id", "from_engineer_id": "id"},
    ONSITE_ARRIVED: {"ticket_id": "id", "engineer_id": "id"},
    RESOLVED: {"ticket_id": "id", "engineer_id": "id"},
    REOPENED: {"ticket_id": "id"},
    SURVEY: {"ticket_id": "id", "csat": "csat"},
    COMPLAINT: {"engineer_id": "id", "severity": SEVERITIES},
    ASSESSMENT: {"engineer_id": "id", "dimension": set(DIMENSIONS), "score": "score",
                 "assessor_role": ASSESSOR_ROLES},
}
OPTIONAL: dict[str, dict[str, Any]] = {
    OPENED: {"team_id": "id", "assignee_id": "id", "requires_onsite": "bool", "product": "code"},
    FIRST_RESPONSE: {"channel": CHANNELS},
    ESCALATED: {"to_engineer_id": "id", "tier": "tier", "reason": "text"},
    ONSITE_ARRIVED: {},
    RESOLVED: {"resolution_code": "code"},
    REOPENED: {"reason": "text"},
    SURVEY: {"nps": "nps", "comment": "text"},
    COMPLAINT: {"ticket_id": "id", "reason": "text"},
    ASSESSMENT: {"assessor_id": "id", "period": "period", "comment": "text"},
}

RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
PERIOD_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
PERIOD_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
PERIOD_YEAR = re.compile(r"^(\d{4})$")

MIN_EPOCH_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


@dataclass(frozen=True)
class Event:
    topic: str
    event_id: str
    t: int  # occurred_at, UTC epoch ms
    fields: dict


def is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return is_integer(value)


def is_string(value, min_len: int, max_len: int) -> bool:
    return isinstance(value, str) and min_len <= len(value) <= max_len


def parse_rfc3339_ms(text: str) -> int | None:
    """RFC 3339 timestamp with offset -> epoch ms (fraction truncated to ms); None if invalid."""
    match = RFC3339.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    if offset in ("Z", "z"):
        offset_minutes = 0
    else:
        off_h, off_m = int(offset[1:3]), int(offset[4:6])
        if off_h > 23 or off_m > 59:
            return None
        offset_minutes = (off_h * 60 + off_m) * (1 if offset[0] == "+" else -1)
    try:
        local = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
        utc = local - dt.timedelta(minutes=offset_minutes)
    except (ValueError, OverflowError):  # no such date, or outside years 1..9999 in UTC
        return None
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    ms = (utc - epoch) // dt.timedelta(seconds=1) * 1000
    if fraction:
        ms += int((fraction[1:] + "00")[:3])
    return ms


def parse_occurred_at(value) -> int | None:
    if is_integer(value):
        return value if MIN_EPOCH_MS <= value <= MAX_EPOCH_MS else None
    if isinstance(value, str):
        return parse_rfc3339_ms(value)
    return None


def is_valid_period(value) -> bool:
    if not isinstance(value, str):
        return False
    month = PERIOD_MONTH.match(value)
    if month:
        return int(month.group(1)) >= 1 and 1 <= int(month.group(2)) <= 12
    for pattern in (PERIOD_QUARTER, PERIOD_YEAR):
        found = pattern.match(value)
        if found:
            return int(found.group(1)) >= 1
    return False


def field_ok(kind, value) -> bool:
    if isinstance(kind, set):
        return isinstance(value, str) and value in kind
    checks = {
        "id": lambda v: is_string(v, 1, MAX_ID),
        "text": lambda v: is_string(v, 0, MAX_TEXT),
        "code": lambda v: is_string(v, 0, MAX_ID),
        "bool": lambda v: isinstance(v, bool),
        "tier": lambda v: is_string(v, 0, MAX_ID) or is_integer(v),
        "csat": lambda v: is_integer(v) and 1 <= v <= 5,
        "nps": lambda v: is_integer(v) and 0 <= v <= 10,
        "score": lambda v: is_number(v) and 0 <= v <= 100,
        "period": is_valid_period,
    }
    return checks[kind](value)


def decode(value):
    """bytes/str -> the decoded JSON value; a dict passes through; None when not JSON."""
    if isinstance(value, dict):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None

    def reject_constant(name):  # NaN, Infinity, -Infinity are not JSON
        raise ValueError(name)

    try:
        return json.loads(value, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return None


def parse_event(topic: str, value) -> Event | None:
    """The validated event, or None when the record is bad (it would be dead-lettered)."""
    if topic not in REQUIRED:
        return None
    body = decode(value)
    if not isinstance(body, dict):
        return None
    if not is_string(body.get("event_id"), 1, MAX_ID):
        return None
    t = parse_occurred_at(body.get("occurred_at"))
    if t is None:
        return None
    for name, kind in REQUIRED[topic].items():
        if name not in body or not field_ok(kind, body[name]):
            return None
    optional = {**COMMON_OPTIONAL, **OPTIONAL[topic]}
    for name, kind in optional.items():
        # an optional field given as JSON null counts as absent
        if body.get(name) is not None and not field_ok(kind, body[name]):
            return None
    return Event(topic, body["event_id"], t, body)


def is_valid(topic: str, value) -> bool:
    return parse_event(topic, value) is not None


def valid_unique_events(records: Iterable[tuple[str, Any]]) -> list[Event]:
    """Bad records dropped; of several events with one event_id, the first copy wins."""
    seen: set[str] = set()
    events = []
    for topic, value in records:
        event = parse_event(topic, value)
        if event is None or event.event_id in seen:
            continue
        seen.add(event.event_id)
        events.append(event)
    return events


# --------------------------------------------------------------------------------------------
# Working calendar
# --------------------------------------------------------------------------------------------


def hours_of_day(day: dt.date, config: OracleConfig) -> list[tuple[str, str]]:
    if day in config.holidays:
        return []
    if day in config.workdays:
        return list(config.work_hours.get(0, []))
    return list(config.work_hours.get(day.weekday(), []))


def local_instant_ms(day: dt.date, hhmm: str, tz: ZoneInfo) -> int:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(hours=hours, minutes=minutes)
    return round(wall.replace(tzinfo=tz).timestamp() * 1000)


def local_date(ms: int, tz: ZoneInfo) -> dt.date:
    utc = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    try:
        return utc.astimezone(tz).date()
    except OverflowError:  # within a day of year 1 or year 9999
        return utc.date()


def working_ms(start_ms: int, end_ms: int, config: OracleConfig) -> int:
    """Milliseconds of [start_ms, end_ms) inside the working intervals of the calendar."""
    if end_ms <= start_ms:
        return 0
    tz = ZoneInfo(config.timezone)
    total = 0
    first_day, last_day = local_date(start_ms, tz), local_date(end_ms, tz)
    for ordinal in range(first_day.toordinal(), last_day.toordinal() + 1):
        day = dt.date.fromordinal(ordinal)
        for begin, end in hours_of_day(day, config):
            interval_start = local_instant_ms(day, begin, tz)
            interval_end = local_instant_ms(day, end, tz)
            total += max(0, min(end_ms, interval_end) - max(start_ms, interval_start))
    return total


def working_seconds(start_ms: int, end_ms: int, config: OracleConfig) -> float:
    return working_ms(start_ms, end_ms, config) / 1000


# --------------------------------------------------------------------------------------------
# Samples (one per credited fact)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Duration:
    """A duration sample in ms, on the calendar clock and on the business-hours clock."""
    calendar_ms: int
    business_ms: int

    def within(self, target_s: float, config: OracleConfig) -> bool:
        sample = self.business_ms if config.sla_clock == "business" else self.calendar_ms
        return sample <= target_s * 1000


def duration(start_ms: int, end_ms: int, config: OracleConfig) -> Duration:
    return Duration(max(0, end_ms - start_ms), working_ms(start_ms, end_ms, config))


@dataclass(frozen=True)
class Resolution:
    engineer: str
    t: int
    ticket_id: str
    episode: int
    handling: Duration
    within_target: bool  # handling time within the priority's resolution target
    fcr: bool
    repeat_7d: bool
    repeat_30d: bool


@dataclass(frozen=True)
class FirstResponse:
    engineer: str
    t: int
    frt: Duration
    within_sla: bool


@dataclass(frozen=True)
class OnsiteVisit:
    engineer: str
    t: int
    arrival: Duration
    on_time: bool


@dataclass(frozen=True)
class Survey:
    engineer: str | None
    t: int
    csat: int
    nps: int | None


@dataclass(frozen=True)
class Escalation:
    engineer: str
    t: int


@dataclass(frozen=True)
class Complaint:
    engineer: str
    t: int


@dataclass(frozen=True)
class Assessment:
    engineer: str
    t: int
    dimension: str
    role: str
    score: float


@dataclass
class Samples:
    resolutions: list[Resolution] = field(default_factory=list)
    first_responses: list[FirstResponse] = field(default_factory=list)
    onsite_visits: list[OnsiteVisit] = field(default_factory=list)
    surveys: list[Survey] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    complaints: list[Complaint] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Tickets: episodes and the facts they credit
# --------------------------------------------------------------------------------------------


def ticket_order(event: Event):
    return (event.t, TICKET_TOPIC_ORDER[event.topic], event.event_id)


@dataclass
class EpisodeEnd:
    """A resolution found by the state machine, before its look-ahead flags are known."""
    engineer: str
    t: int
    episode: int
    episode_start: int
    escalated: bool


@dataclass
class Ticket:
    ticket_id: str
    opened: Event  # the first ticket-opened in the ticket event order
    events: list[Event]  # all other events of the ticket, in the ticket event order
    episode_ends: list[EpisodeEnd] = field(default_factory=list)
    first_response: Event | None = None
    first_onsite: Event | None = None
    reopen_times: list[int] = field(default_factory=list)
    surveys: list[Event] = field(default_factory=list)
    escalations: list[Event] = field(default_factory=list)

    @property
    def customer_category(self):
        return (self.opened.fields["customer_id"], self.opened.fields["category"])

    @property
    def opened_at(self) -> int:
        return self.opened.t

    @property
    def priority(self) -> str:
        return self.opened.fields["priority"]

    @property
    def first_responder(self) -> str | None:
        return self.first_response.fields["engineer_id"] if self.first_response else None


def build_tickets(events: list[Event]) -> list[Ticket]:
    """Tickets with a ticket-opened; the events of the others are held (count nothing)."""
    by_ticket: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.topic in TICKET_TOPIC_ORDER:
            by_ticket[event.fields["ticket_id"]].append(event)
    tickets = []
    for ticket_id, ticket_events in by_ticket.items():
        ticket_events.sort(key=ticket_order)
        openings = [e for e in ticket_events if e.topic == OPENED]
        if not openings:
            continue
        others = [e for e in ticket_events if e.topic != OPENED]
        ticket = Ticket(ticket_id, openings[0], others)
        replay(ticket)
        tickets.append(ticket)
    return tickets


def replay(ticket: Ticket) -> None:
    """The episode state machine; it starts open in episode 1 at the opened time."""
    is_open, episode, episode_start, escalated = True, 1, ticket.opened_at, False
    for event in ticket.events:
        if event.topic == FIRST_RESPONSE and ticket.first_response is None:
            ticket.first_response = event
        elif event.topic == ONSITE_ARRIVED and ticket.first_onsite is None:
            ticket.first_onsite = event
        elif event.topic == ESCALATED:
            ticket.escalations.append(event)
            if is_open:
                escalated = True
        elif event.topic == RESOLVED and is_open:
            ticket.episode_ends.append(EpisodeEnd(
                event.fields["engineer_id"], event.t, episode, episode_start, escalated))
            is_open = False
        elif event.topic == REOPENED:
            ticket.reopen_times.append(event.t)
            if not is_open:
                is_open, episode, episode_start, escalated = True, episode + 1, event.t, False
        elif event.topic == SURVEY:
            ticket.surveys.append(event)


def within_days_after(t: int, resolved_at: int, days: int) -> bool:
    return 0 <= t - resolved_at <= days * DAY_MS


class NewTicketIndex:
    """Opened times of the tickets per (customer_id, category), to find repeat tickets."""

    def __init__(self, tickets: list[Ticket]):
        self.opened_times: dict[tuple, list[int]] = defaultdict(list)
        for ticket in tickets:
            self.opened_times[ticket.customer_category].append(ticket.opened_at)
        for times in self.opened_times.values():
            times.sort()

    def other_ticket_within(self, ticket: Ticket, resolved_at: int, days: int) -> bool:
        times = self.opened_times[ticket.customer_category]
        lo = bisect.bisect_left(times, resolved_at)
        hi = bisect.bisect_right(times, resolved_at + days * DAY_MS)
        in_range = hi - lo
        if within_days_after(ticket.opened_at, resolved_at, days):
            in_range -= 1  # the ticket itself is not a new ticket
        return in_range > 0


def reopened_within(ticket: Ticket, resolved_at: int, days: int) -> bool:
    return any(within_days_after(t, resolved_at, days) for t in ticket.reopen_times)


def is_repeat(ticket: Ticket, resolved_at: int, days: int, index: NewTicketIndex) -> bool:
    return (reopened_within(ticket, resolved_at, days)
            or index.other_ticket_within(ticket, resolved_at, days))


def is_first_contact_resolution(ticket: Ticket, end: EpisodeEnd) -> bool:
    return (end.episode == 1
            and not end.escalated
            and ticket.first_responder in (None, end.engineer)
            and not reopened_within(ticket, end.t, 7))


def resolutions_of(ticket: Ticket, index: NewTicketIndex, config) -> list[Resolution]:
    target = config.aht_targets_s[ticket.priority]
    resolutions = []
    for end in ticket.episode_ends:
        handling = duration(end.episode_start, end.t, config)
        resolutions.append(Resolution(
            engineer=end.engineer, t=end.t, ticket_id=ticket.ticket_id, episode=end.episode,
            handling=handling,
            within_target=handling.within(target, config),
            fcr=is_first_contact_resolution(ticket, end),
            repeat_7d=is_repeat(ticket, end.t, 7, index),
            repeat_30d=is_repeat(ticket, end.t, 30, index),
        ))
    return resolutions


def first_response_of(ticket: Ticket, config) -> list[FirstResponse]:
    response = ticket.first_response
    if response is None:
        return []
    frt = duration(ticket.opened_at, response.t, config)
    target = config.frt_targets_s[ticket.priority]
    return [FirstResponse(response.fields["engineer_id"], response.t, frt,
                          frt.within(target, config))]


def onsite_visit_of(ticket: Ticket, config) -> list[OnsiteVisit]:
    arrival = ticket.first_onsite
    if arrival is None:
        return []
    sample = duration(ticket.opened_at, arrival.t, config)
    target = config.onsite_targets_s[ticket.priority]
    return [OnsiteVisit(arrival.fields["engineer_id"], arrival.t, sample,
                        sample.within(target, config))]


def survey_credit(ticket: Ticket, survey_at: int) -> str | None:
    """Latest resolution at or before the survey; else first responder; else assignee."""
    resolvers = [end.engineer for end in ticket.episode_ends if end.t <= survey_at]
    if resolvers:
        return resolvers[-1]  # episode ends are in time order
    if ticket.first_responder is not None:
        return ticket.first_responder
    return ticket.opened.fields.get("assignee_id")


def surveys_of(ticket: Ticket) -> list[Survey]:
    return [Survey(survey_credit(ticket, s.t), s.t, s.fields["csat"], s.fields.get("nps"))
            for s in ticket.surveys]


def escalations_of(ticket: Ticket) -> list[Escalation]:
    return [Escalation(e.fields["from_engineer_id"], e.t) for e in ticket.escalations]


# --------------------------------------------------------------------------------------------
# Complaints and assessments (not ticket events: never held)
# --------------------------------------------------------------------------------------------


def period_start_ms(period: str, tz: ZoneInfo) -> int:
    """First instant of "2026-11" / "2026-Q4" / "2026" in the business timezone."""
    if match := PERIOD_MONTH.match(period):
        year, month = int(match.group(1)), int(match.group(2))
    elif match := PERIOD_QUARTER.match(period):
        year, month = int(match.group(1)), 3 * (int(match.group(2)) - 1) + 1
    else:
        year, month = int(period), 1
    return round(dt.datetime(year, month, 1, tzinfo=tz).timestamp() * 1000)


def assessment_of(event: Event, config: OracleConfig) -> Assessment:
    period = event.fields.get("period")
    t = period_start_ms(period, ZoneInfo(config.timezone)) if period is not None else event.t
    f = event.fields
    return Assessment(f["engineer_id"], t, f["dimension"], f["assessor_role"], f["score"])


# --------------------------------------------------------------------------------------------
# Collecting all samples
# --------------------------------------------------------------------------------------------


def collect_samples(events: list[Event], config: OracleConfig) -> Samples:
    samples = Samples()
    tickets = build_tickets(events)
    index = NewTicketIndex(tickets)
    for ticket in tickets:
        samples.resolutions += resolutions_of(ticket, index, config)
        samples.first_responses += first_response_of(ticket, config)
        samples.onsite_visits += onsite_visit_of(ticket, config)
        samples.surveys += [s for s in surveys_of(ticket) if s.engineer is not None]
        samples.escalations += escalations_of(ticket)
    for event in events:
        if event.topic == COMPLAINT:
            samples.complaints.append(Complaint(event.fields["engineer_id"], event.t))
        elif event.topic == ASSESSMENT:
            samples.assessments.append(assessment_of(event, config))
    return samples


def group_in_window(samples: Samples, from_ms: int, to_ms: int, key_of) -> dict[Any, Samples]:
    groups: dict[Any, Samples] = defaultdict(Samples)
    for kind in fields(Samples):
        for sample in getattr(samples, kind.name):
            if from_ms <= sample.t < to_ms:
                getattr(groups[key_of(sample.engineer)], kind.name).append(sample)
    return dict(groups)


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


def mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def rate(flags) -> float | None:
    flags = list(flags)
    return sum(1 for f in flags if f) / len(flags) if flags else None


def percentile(values, q: float) -> float | None:
    """Linear interpolation between closest ranks (R-7, numpy's default)."""
    x = sorted(values)
    if not x:
        return None
    h = (len(x) - 1) * q
    lo = math.floor(h)
    if lo + 1 >= len(x):
        return float(x[lo])
    return x[lo] + (h - lo) * (x[lo + 1] - x[lo])


def seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def duration_fields(prefix: str, durations: list[Duration]) -> dict:
    calendar = [d.calendar_ms for d in durations]
    business = [d.business_ms for d in durations]
    return {
        f"{prefix}_avg_s": seconds(mean(calendar)),
        f"{prefix}_p50_s": seconds(percentile(calendar, 0.5)),
        f"{prefix}_p90_s": seconds(percentile(calendar, 0.9)),
        f"{prefix}_avg_s_bh": seconds(mean(business)),
        f"{prefix}_p50_s_bh": seconds(percentile(business, 0.5)),
        f"{prefix}_p90_s_bh": seconds(percentile(business, 0.9)),
    }


def nps(surveys: list[Survey]) -> float | None:
    scores = [s.nps for s in surveys if s.nps is not None]
    if not scores:
        return None
    promoters = sum(1 for n in scores if n >= 9)
    detractors = sum(1 for n in scores if n <= 6)
    return 100 * (promoters - detractors) / len(scores)


def review360(assessments: list[Assessment], weights: dict[str, float]) -> float | None:
    """Mean per assessor role, then the weighted mean over the present roles of weight > 0."""
    by_role: dict[str, list[float]] = defaultdict(list)
    for a in assessments:
        by_role[a.role].append(a.score)
    weighted = [(weights.get(role, 0.0), mean(scores)) for role, scores in by_role.items()]
    weighted = [(w, m) for w, m in weighted if w > 0]
    if not weighted:
        return None
    return sum(w * m for w, m in weighted) / sum(w for w, _ in weighted)


def assessment_fields(assessments: list[Assessment], config: OracleConfig) -> dict:
    out = {}
    for dimension in DIMENSIONS:
        of_dimension = [a for a in assessments if a.dimension == dimension]
        if dimension == "review360":
            out[f"assessment_{dimension}"] = review360(of_dimension, config.review_weights)
        else:
            out[f"assessment_{dimension}"] = mean(a.score for a in of_dimension)
        out[f"assessment_{dimension}_count"] = len(of_dimension)
    return out


def kpis_of(s: Samples, config: OracleConfig) -> dict:
    resolutions = len(s.resolutions)
    frt = duration_fields("frt", [r.frt for r in s.first_responses])
    aht = duration_fields("aht", [r.handling for r in s.resolutions])
    onsite = duration_fields("onsite_arrival", [v.arrival for v in s.onsite_visits])
    return {
        "resolutions": resolutions,
        "first_responses": len(s.first_responses),
        "frt_avg_s": frt["frt_avg_s"],
        "frt_p50_s": frt["frt_p50_s"],
        "frt_p90_s": frt["frt_p90_s"],
        "frt_sla_rate": rate(r.within_sla for r in s.first_responses),
        "frt_avg_s_bh": frt["frt_avg_s_bh"],
        "frt_p50_s_bh": frt["frt_p50_s_bh"],
        "frt_p90_s_bh": frt["frt_p90_s_bh"],
        "aht_avg_s": aht["aht_avg_s"],
        "aht_p50_s": aht["aht_p50_s"],
        "aht_p90_s": aht["aht_p90_s"],
        "aht_sla_rate": rate(r.within_target for r in s.resolutions),
        "aht_avg_s_bh": aht["aht_avg_s_bh"],
        "aht_p50_s_bh": aht["aht_p50_s_bh"],
        "aht_p90_s_bh": aht["aht_p90_s_bh"],
        "fcr_rate": rate(r.fcr for r in s.resolutions),
        "repeat_rate_7d": rate(r.repeat_7d for r in s.resolutions),
        "repeat_rate_30d": rate(r.repeat_30d for r in s.resolutions),
        "escalations": len(s.escalations),
        "onsite_visits": len(s.onsite_visits),
        "onsite_arrival_avg_s": onsite["onsite_arrival_avg_s"],
        "onsite_arrival_avg_s_bh": onsite["onsite_arrival_avg_s_bh"],
        "onsite_on_time_rate": rate(v.on_time for v in s.onsite_visits),
        "surveys": len(s.surveys),
        "csat_avg": mean(v.csat for v in s.surveys),
        "csat_positive_rate": rate(v.csat >= 4 for v in s.surveys),
        "nps": nps(s.surveys),
        "nps_responses": sum(1 for v in s.surveys if v.nps is not None),
        "complaints": len(s.complaints),
        "complaint_rate": len(s.complaints) / resolutions if resolutions else None,
        **assessment_fields(s.assessments, config),
    }


KPI_FIELDS = tuple(kpis_of(Samples(), OracleConfig()).keys())


def compute_kpis(records, from_ms: int, to_ms: int, config: OracleConfig = OracleConfig(),
                 roster: dict[str, str] | None = None, group: str = "engineer") -> dict[str, dict]:
    """KPIs per engineer (group="engineer") or per roster team (group="team", engineers not in
    the roster under None) over [from_ms, to_ms). records: (topic, value) pairs, value a dict or
    the raw bytes/str of a message. Only keys with at least one sample in the window appear."""
    if group not in ("engineer", "team"):
        raise ValueError(f"group must be 'engineer' or 'team', not {group!r}")
    roster = roster or {}
    key_of = (lambda engineer: engineer) if group == "engineer" else roster.get
    samples = collect_samples(valid_unique_events(records), config)
    groups = group_in_window(samples, from_ms, to_ms, key_of)
    return {key: kpis_of(group_samples, config) for key, group_samples in groups.items()}
