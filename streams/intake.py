"""Intake: one raw message in, one routed output (pure; the agent in streams/app.py sends it).

- a bad message -> a dead letter (events-dlq) with its reason;
- a ticket event -> its compact record, re-keyed by ticket_id for the lifecycle agent;
- a complaint or an assessment -> its fact, straight to the sink (they need no ticket state).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.deadletter import Rejection, dead_letter, parse_event
from schemas.events import AssessmentRecorded, ComplaintFiled
from schemas.period import parse_period
from streams import ticket


@dataclass(frozen=True, slots=True)
class Routed:
    target: str  # "dlq", "ticket" or "fact"
    key: str
    value: dict
    kind: str = ""  # a dead letter's kind of reason (schemas.deadletter.Rejection)


def route(topic: str, raw: bytes | None, partition: int, offset: int, now_ms: int,
          timezone: str, replay_of: bytes | None = None) -> Routed:
    """``replay_of`` is the REPLAY_HEADER of a republished dead letter: if it is still bad,
    its dead letter replaces the original one instead of adding a copy."""
    event = parse_event(topic, raw)
    source = origin(replay_of) or (topic, partition, offset)
    if isinstance(event, Rejection):
        letter = dead_letter(*source, raw, event.reason, now_ms)
        return Routed("dlq", "{}:{}:{}".format(*source), letter, event.kind)
    if isinstance(event, ComplaintFiled):
        return Routed("fact", event.engineer_id, complaint_fact(event))
    if isinstance(event, AssessmentRecorded):
        return Routed("fact", event.engineer_id, assessment_fact(event, timezone))
    # src: where the record came from, for the dead letter if the lifecycle refuses it.
    return Routed("ticket", event.ticket_id, {**ticket.record(event), "src": list(source)})


def origin(header: bytes | None) -> tuple[str, int, int] | None:
    """The (topic, partition, offset) of a replay header ``topic:partition:offset``."""
    if not header:
        return None
    try:
        topic, partition, offset = header.decode().rsplit(":", 2)
        return topic, int(partition), int(offset)
    except ValueError:
        return None  # not ours: the message is treated as a new one


def complaint_fact(event: ComplaintFiled) -> dict:
    return {
        "kind": "complaint", "event_id": event.event_id, "engineer_id": event.engineer_id,
        "filed_at": event.occurred_at, "severity": event.severity, "ticket_id": event.ticket_id,
        "reason": event.reason, "v": 1, "del": 0,
    }


def assessment_fact(event: AssessmentRecorded, timezone: str) -> dict:
    effective = (parse_period(event.period, timezone).start_ms if event.period
                 else event.occurred_at)
    return {
        "kind": "assessment", "event_id": event.event_id, "engineer_id": event.engineer_id,
        "dimension": event.dimension, "score": float(event.score),
        "assessor_role": event.assessor_role, "assessor_id": event.assessor_id,
        "period": event.period, "effective_at": effective, "v": 1, "del": 0,
    }
