"""The wire events of ../shared/spec/events.md (version 1) as pydantic models.

Wire models accept unknown extra fields (the contract promises forward compatibility) but are
strict about the types of the fields they know: a ticket id sent as a number is a producer bug
we dead-letter rather than guess at. ``occurred_at`` becomes UTC epoch milliseconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    model_validator,
)

from schemas.errors import ServicescoreError
from schemas.period import parse_period

ID_MAX = 128
TEXT_MAX = 4000

Id = Annotated[StrictStr, Field(min_length=1, max_length=ID_MAX)]
Text = Annotated[StrictStr, Field(max_length=TEXT_MAX)]
Channel = Literal["phone", "chat", "email", "web", "onsite"]
Priority = Literal["P1", "P2", "P3", "P4"]
Dimension = Literal["compliance", "attitude", "collaboration", "training", "knowledge", "review360"]
AssessorRole = Literal["supervisor", "peer", "subordinate", "customer", "self"]


def _period(value: str) -> str:
    """A period of schemas/period.py (the one definition of the syntax and its years): it always
    has a first instant, the assessment's effective time."""
    try:
        parse_period(value, "UTC")
    except ServicescoreError as exc:
        raise ValueError(str(exc)) from None
    return value


Period = Annotated[StrictStr, AfterValidator(_period)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_MS = (datetime(1900, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_MAX_MS = (datetime(2300, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)
_MILLISECOND = timedelta(milliseconds=1)


def _epoch_ms(value: object) -> int:
    """RFC 3339 with an offset, or integer epoch milliseconds; anything else is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not _MIN_MS <= value < _MAX_MS:
            raise ValueError(f"epoch milliseconds out of range (years 1900-2299): {value}")
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp with offset or integer epoch milliseconds")
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value[:40]!r}")
    if match.group("offset") is None:
        raise ValueError(f"timestamp without offset is ambiguous: {value[:40]!r}")
    try:
        parsed = datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError:
        raise ValueError(f"not a valid date or time: {value[:40]!r}") from None
    ms = (parsed - _EPOCH) // _MILLISECOND
    if not _MIN_MS <= ms < _MAX_MS:
        raise ValueError(f"timestamp out of range (years 1900-2299): {value[:40]!r}")
    return ms


EpochMs = Annotated[int, BeforeValidator(_epoch_ms)]


class WireEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Id
    occurred_at: EpochMs
    source: Annotated[StrictStr, Field(max_length=ID_MAX)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: object) -> object:
        """events.md: null means absent for every optional field (many producers write absent
        fields as null), so an optional field's default applies; a null required field is still
        refused as missing."""
        if not isinstance(data, dict) or None not in data.values():
            return data
        optional = cls._optional_fields()
        return {k: v for k, v in data.items() if v is not None or k not in optional}

    @classmethod
    def _optional_fields(cls) -> frozenset[str]:
        # Once per model: this runs for every message the intake reads.
        optional = _OPTIONAL.get(cls)
        if optional is None:
            optional = _OPTIONAL[cls] = frozenset(
                n for n, f in cls.model_fields.items() if not f.is_required())
        return optional


_OPTIONAL: dict[type, frozenset[str]] = {}


class TicketOpened(WireEvent):
    kind: ClassVar[str] = "opened"
    ticket_id: Id
    customer_id: Id
    channel: Channel
    priority: Priority
    category: Id
    team_id: Id | None = None
    assignee_id: Id | None = None
    requires_onsite: StrictBool = False
    product: Annotated[StrictStr, Field(max_length=ID_MAX)] | None = None


class TicketFirstResponse(WireEvent):
    kind: ClassVar[str] = "first_response"
    ticket_id: Id
    engineer_id: Id
    channel: Channel | None = None


class TicketEscalated(WireEvent):
    kind: ClassVar[str] = "escalated"
    ticket_id: Id
    from_engineer_id: Id
    to_engineer_id: Id | None = None
    tier: Annotated[StrictStr, Field(max_length=ID_MAX)] | int | None = None
    reason: Text | None = None


class TicketOnsiteArrived(WireEvent):
    kind: ClassVar[str] = "onsite_arrived"
    ticket_id: Id
    engineer_id: Id


class TicketResolved(WireEvent):
    kind: ClassVar[str] = "resolved"
    ticket_id: Id
    engineer_id: Id
    resolution_code: Annotated[StrictStr, Field(max_length=ID_MAX)] | None = None


class TicketReopened(WireEvent):
    kind: ClassVar[str] = "reopened"
    ticket_id: Id
    reason: Text | None = None


class SurveySubmitted(WireEvent):
    kind: ClassVar[str] = "survey"
    ticket_id: Id
    csat: Annotated[int, Field(strict=True, ge=1, le=5)]
    nps: Annotated[int, Field(strict=True, ge=0, le=10)] | None = None
    comment: Text | None = None


class ComplaintFiled(WireEvent):
    kind: ClassVar[str] = "complaint"
    engineer_id: Id
    severity: Literal["minor", "major"]
    ticket_id: Id | None = None
    reason: Text | None = None


class AssessmentRecorded(WireEvent):
    kind: ClassVar[str] = "assessment"
    engineer_id: Id
    dimension: Dimension
    score: Annotated[float, Field(strict=True, ge=0, le=100)]
    assessor_role: AssessorRole
    assessor_id: Id | None = None
    period: Period | None = None
    comment: Text | None = None


# Topic name (without the configured prefix) -> model. The names are the public contract.
TOPIC_MODELS: dict[str, type[WireEvent]] = {
    "ticket-opened": TicketOpened,
    "ticket-first-response": TicketFirstResponse,
    "ticket-escalated": TicketEscalated,
    "ticket-onsite-arrived": TicketOnsiteArrived,
    "ticket-resolved": TicketResolved,
    "ticket-reopened": TicketReopened,
    "survey-submitted": SurveySubmitted,
    "complaint-filed": ComplaintFiled,
    "assessment-recorded": AssessmentRecorded,
}
EVENT_TOPICS = tuple(TOPIC_MODELS)
TICKET_TOPICS = tuple(t for t, m in TOPIC_MODELS.items() if "ticket_id" in m.model_fields
                      and m.model_fields["ticket_id"].is_required())
DLQ_TOPIC = "events-dlq"
ROSTER_TOPIC = "engineer-roster"


def intake_group(app_id: str) -> str:
    """The intake's consumer group (the lifecycle's is the app id itself, as Faust names it)."""
    return f"{app_id}-intake"


def ticket_events_topic(app_id: str) -> str:
    """The internal topic the intake re-keys ticket records onto, by ticket_id (one per app:
    its name is stable, it reaches consumer groups and offsets)."""
    return f"{app_id}-ticket-events"
