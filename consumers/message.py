"""A sink message -> the facts it holds, or why it is refused (the reason its dead letter
carries). Never raises: bad input is data, like the stream processors' dead letters.

A facts message is one fact, or ``{"ts": ..., "facts": [...]}``: everything one step of a
stream processor emitted, in one message (one send instead of several). ``events-dlq`` holds
dead letters (stored as facts of kind ``dead_letter``), ``engineer-roster`` roster records.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from schemas.deadletter import describe
from schemas.events import DLQ_TOPIC, ID_MAX, ROSTER_TOPIC
from schemas.facts import FACT_TABLES
from schemas.roster import RosterRecord


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str  # "unreadable", "invalid" or "refused" (by ClickHouse): a metric label
    reason: str


def to_facts(topic: str, value: bytes | None, timestamp_ms: int,
             key: bytes | None) -> list[dict] | Refusal:
    """``topic`` is the logical (unprefixed) name."""
    if topic == ROSTER_TOPIC:
        return roster_facts(value, timestamp_ms, key)
    data = json_object(value)
    if isinstance(data, Refusal):
        return data
    if topic == DLQ_TOPIC:
        # Versioned by its rejection time: a replayed message refused again under the same
        # identity (its replay header) replaces the letter that `dlq replay` marked.
        return checked([{**data, "kind": "dead_letter", "v": data.get("rejected_at"), "del": 0}])
    items = data.get("facts", [data])
    if not isinstance(items, list):
        return Refusal("invalid", "facts: must be a list")
    facts = checked(items)
    if not isinstance(facts, Refusal) and "ts" in data:
        for fact in facts:
            fact.setdefault("ts", data["ts"])
    return facts


def json_object(value: bytes | None) -> dict | Refusal:
    if value is None:
        return Refusal("unreadable", "empty message (no value)")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Refusal("unreadable", f"not valid UTF-8 JSON: {exc}")
    if not isinstance(data, dict):
        return Refusal("unreadable", f"not a JSON object (got {type(data).__name__})")
    return data


def checked(items: list) -> list[dict] | Refusal:
    """A malformed fact would fail its whole batch's insert: refuse its message up front."""
    for item in items:
        problem = fact_problem(item)
        if problem:
            return Refusal("invalid", problem)
    return items


def fact_problem(fact: object) -> str | None:
    if not isinstance(fact, dict):
        return f"fact: not a JSON object (got {type(fact).__name__})"
    table = FACT_TABLES.get(fact.get("kind")) if isinstance(fact.get("kind"), str) else None
    if table is None:
        return f"kind: not a fact kind (got {str(fact.get('kind'))[:60]!r})"
    return table.problem(fact)


def roster_facts(value: bytes | None, timestamp_ms: int,
                 key: bytes | None) -> list[dict] | Refusal:
    """engineer-roster is compacted and keyed by engineer_id: a null value (tombstone) removes
    the engineer; a record under another key would survive that engineer's tombstone."""
    version = max(timestamp_ms, 0)  # -1: a message without a timestamp
    if value is None:
        return roster_tombstone(key, version)
    data = json_object(value)
    if isinstance(data, Refusal):
        return data
    try:
        record = RosterRecord.model_validate(data)
    except ValidationError as exc:
        return Refusal("invalid", describe(exc))
    if key is not None and key != record.engineer_id.encode():
        return Refusal("invalid", "key: must be the record's engineer_id "
                                  f"(got {key[:60]!r})")
    return [{**record.model_dump(), "kind": "roster", "updated_at": version, "v": version,
             "del": 0}]


def roster_tombstone(key: bytes | None, version: int) -> list[dict] | Refusal:
    if key is None:
        return Refusal("unreadable", "empty message (no value and no key)")
    try:
        engineer = key.decode()
    except UnicodeDecodeError:
        return Refusal("invalid", "key: not UTF-8")
    if not 1 <= len(engineer) <= ID_MAX:
        return Refusal("invalid", f"key: an engineer_id must be 1..{ID_MAX} characters")
    return [{"kind": "roster", "engineer_id": engineer, "v": version, "del": 1}]
