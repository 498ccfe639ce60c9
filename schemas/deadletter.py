"""Parsing raw Kafka values into events, with bad input as data, never as an exception.

``parse_event`` returns either a wire event or a ``Rejection`` naming the field and the reason;
``dead_letter`` turns a rejection into the record published to ``events-dlq``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from schemas.events import TOPIC_MODELS, WireEvent

MAX_MESSAGE_BYTES = 64 * 1024
# A dead letter must always fit its topic (1 MiB by default): the raw bytes of a message over
# the limit are kept as a prefix, with the full length and the SHA-256 of the whole message.
RAW_KEPT_BYTES = MAX_MESSAGE_BYTES
REASON_MAX = 1000
# `dlq replay` marks a republished message with its dead letter's (topic:partition:offset): if
# it is still bad, its new dead letter replaces that one instead of adding a copy.
REPLAY_HEADER = "servicescore-replay-of"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    kind: str = "invalid"  # unreadable, too_large, invalid: the metric's label, a short word


def parse_event(topic: str, raw: bytes | None) -> WireEvent | Rejection:
    """One message value of ``topic`` (unprefixed name) -> its event, or why it is refused."""
    model = TOPIC_MODELS.get(topic)
    if model is None:
        return Rejection(f"unknown topic {topic!r}", "unreadable")
    if raw is None:
        return Rejection("empty message (no value)", "unreadable")
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(f"message of {len(raw)} bytes exceeds the {MAX_MESSAGE_BYTES} byte limit",
                         "too_large")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(f"not valid UTF-8 JSON: {exc}", "unreadable")
    if not isinstance(data, dict):
        return Rejection(f"not a JSON object (got {type(data).__name__})", "unreadable")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return Rejection(describe(exc))


def describe(exc: ValidationError) -> str:
    """The first problem of a validation error as 'field: reason'; the rest counted."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    # Union members add their type name to the location; the field is the first item.
    field = str(first["loc"][0]) if first["loc"] else "message"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "string_too_long":
        message = f"{message} (got {len(first['input'])})"
    elif first["type"] != "value_error":
        message = f"{message} (got {repr(first['input'])[:60]})"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{field}: {message}{more}"


def dead_letter(
    topic: str, partition: int, offset: int, raw: bytes | None, reason: str, rejected_at_ms: int
) -> dict:
    """The record published to events-dlq for one refused message; bounded in size whatever
    the message (a prefix of at most RAW_KEPT_BYTES of it, and a reason of at most REASON_MAX
    characters)."""
    raw = raw or b""
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "raw_base64": base64.b64encode(raw[:RAW_KEPT_BYTES]).decode("ascii"),
        "raw_bytes": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
        "truncated": len(raw) > RAW_KEPT_BYTES,
        "reason": reason[:REASON_MAX],
        "rejected_at": rejected_at_ms,
    }
