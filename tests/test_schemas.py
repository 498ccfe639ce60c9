"""The wire contract of events.md: every topic's event through a real Kafka and back, and every
class of bad input refused with a reason naming the field (never an exception)."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.deadletter import RAW_KEPT_BYTES, Rejection, dead_letter, parse_event
from schemas.events import EVENT_TOPICS, TicketOpened

AT_MS = 1793668500000  # 2026-11-03T09:15:00+08:00 = 2026-11-03T01:15:00Z
EXAMPLES = {
    "ticket-opened": {
        "event_id": "e-open-1", "occurred_at": "2026-11-03T09:15:00+08:00", "ticket_id": "T-1",
        "customer_id": "C-上海-001", "channel": "phone", "priority": "P2",
        "category": "打印机/卡纸", "team_id": "华东一组", "assignee_id": "E-7",
        "requires_onsite": True, "product": "LaserJet 5200", "source": "callcenter"},
    "ticket-first-response": {
        "event_id": "e-fr-1", "occurred_at": "2026-11-03T01:15:00Z", "ticket_id": "T-1",
        "engineer_id": "E-7", "channel": "chat", "source": "callcenter"},
    "ticket-escalated": {
        "event_id": "e-esc-1", "occurred_at": AT_MS, "ticket_id": "T-1",
        "from_engineer_id": "E-7", "to_engineer_id": "E-9", "tier": "L2",
        "reason": "需要二线支持：固件问题"},
    "ticket-onsite-arrived": {
        "event_id": "e-onsite-1", "occurred_at": "2026-11-03T09:15:00+08:00",
        "ticket_id": "T-1", "engineer_id": "E-9"},
    "ticket-resolved": {
        "event_id": "e-res-1", "occurred_at": "2026-11-03T01:15:00Z", "ticket_id": "T-1",
        "engineer_id": "E-9", "resolution_code": "更换定影器"},
    "ticket-reopened": {
        "event_id": "e-reopen-1", "occurred_at": AT_MS, "ticket_id": "T-1",
        "reason": "客户反馈问题复发"},
    "survey-submitted": {
        "event_id": "e-survey-1", "occurred_at": "2026-11-03T09:15:00+08:00",
        "ticket_id": "T-1", "csat": 5, "nps": 9, "comment": "师傅很专业，当天解决 👍"},
    "complaint-filed": {
        "event_id": "e-complaint-1", "occurred_at": "2026-11-03T01:15:00Z",
        "engineer_id": "E-7", "severity": "major", "ticket_id": "T-1",
        "reason": "上门迟到两小时，态度冷淡"},
    "assessment-recorded": {
        "event_id": "e-assess-1", "occurred_at": AT_MS, "engineer_id": "E-7",
        "dimension": "attitude", "score": 87.5, "assessor_role": "supervisor",
        "assessor_id": "M-1", "period": "2026-11", "comment": "服务态度与职业素养良好"},
}


def parsed_fields(event, example: dict) -> dict:
    """The example's fields as parsed (occurred_at now UTC epoch ms)."""
    return {name: getattr(event, name) for name in example}


def expected(example: dict) -> dict:
    return {**example, "occurred_at": AT_MS}


def variant(topic: str, **changes) -> bytes:
    """The topic's valid example with fields changed; a field set to ... is removed."""
    event = {**EXAMPLES[topic], **changes}
    return orjson.dumps({k: v for k, v in event.items() if v is not ...})


async def round_trip(bootstrap: str, messages: list[tuple[str, bytes]]) -> list:
    """Produce (topic, value) to Kafka, consume them all back as records."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, value in messages:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(*{t for t, _ in messages}, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        got: list = []
        while len(got) < len(messages):
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            got += [record for part in batch.values() for record in part]
        return got
    finally:
        await consumer.stop()


def test_examples_cover_every_topic_of_the_contract():
    assert set(EXAMPLES) == set(EVENT_TOPICS) == {
        "ticket-opened", "ticket-first-response", "ticket-escalated", "ticket-onsite-arrived",
        "ticket-resolved", "ticket-reopened", "survey-submitted", "complaint-filed",
        "assessment-recorded"}


def test_every_topic_round_trips_through_kafka(kafka_bootstrap, topic_factory):
    real = {name: topic_factory(prefix=name) for name in EXAMPLES}  # contract name -> topic
    sent = {name: orjson.dumps(example) for name, example in EXAMPLES.items()}
    records = asyncio.run(round_trip(kafka_bootstrap, [(real[n], v) for n, v in sent.items()]))
    by_name = {name: r for r in records for name, topic in real.items() if r.topic == topic}
    # contract name -> the record consumed back, its bytes untouched (Chinese text included)
    assert {n: r.value for n, r in by_name.items()} == sent
    parsed = {n: parse_event(n, r.value) for n, r in by_name.items()}
    assert {n: parsed_fields(e, EXAMPLES[n]) for n, e in parsed.items()} == {
        n: expected(example) for n, example in EXAMPLES.items()}


@pytest.mark.parametrize("occurred_at, ms", [
    ("2026-11-03T09:15:00+08:00", AT_MS),
    ("2026-11-03T01:15:00Z", AT_MS),
    ("2026-11-03T01:15:00z", AT_MS),
    ("2026-11-02T20:15:00-05:00", AT_MS),
    ("2026-11-03T09:15:00.250+08:00", AT_MS + 250),
    (AT_MS, AT_MS),
    (0, 0),
])
def test_occurred_at_forms_give_utc_epoch_ms(occurred_at, ms):
    event = parse_event("ticket-reopened", variant("ticket-reopened", occurred_at=occurred_at))
    assert event.occurred_at == ms


def test_chinese_text_round_trips_exactly():
    survey = parse_event("survey-submitted", variant("survey-submitted"))
    complaint = parse_event("complaint-filed", variant("complaint-filed"))
    opened = parse_event("ticket-opened", variant("ticket-opened"))
    assert (survey.comment, complaint.reason, opened.category) == (
        "师傅很专业，当天解决 👍", "上门迟到两小时，态度冷淡", "打印机/卡纸")


@pytest.mark.parametrize("topic", EXAMPLES)
def test_unknown_extra_fields_are_ignored(topic):
    extra = variant(topic, schema_version=2, x_新字段={"nested": [1, 2]}, source_region="华东")
    assert parse_event(topic, extra) == parse_event(topic, variant(topic))


BAD = [
    # (topic, raw value, the reason starts with, and contains)
    ("ticket-opened", b"{not json", "not valid UTF-8 JSON", ""),
    ("ticket-opened", b"\xff\xfe{}", "not valid UTF-8 JSON", ""),
    ("ticket-opened", b"[1, 2]", "not a JSON object", "list"),
    ("ticket-opened", b'"T-1"', "not a JSON object", "str"),
    ("ticket-opened", None, "empty message", ""),
    ("ticket-opened", variant("ticket-opened", customer_id=...), "customer_id:", "missing"),
    ("ticket-opened", variant("ticket-opened", event_id=...), "event_id:", "missing"),
    ("ticket-opened", variant("ticket-opened", occurred_at=...), "occurred_at:", "missing"),
    ("survey-submitted", variant("survey-submitted", csat=...), "csat:", "missing"),
    ("ticket-opened", variant("ticket-opened", ticket_id=12345), "ticket_id:", "string"),
    ("ticket-resolved", variant("ticket-resolved", engineer_id=7), "engineer_id:", "string"),
    ("ticket-opened", variant("ticket-opened", requires_onsite="yes"), "requires_onsite:",
     "boolean"),
    ("survey-submitted", variant("survey-submitted", csat="5"), "csat:", "integer"),
    ("ticket-opened", variant("ticket-opened", occurred_at="2026-11-03T09:15:00"),
     "occurred_at:", "without offset"),
    ("ticket-opened", variant("ticket-opened", occurred_at="03/11/2026 09:15"),
     "occurred_at:", "RFC 3339"),
    ("ticket-opened", variant("ticket-opened", occurred_at=True), "occurred_at:", ""),
    ("survey-submitted", variant("survey-submitted", csat=0), "csat:", "greater than"),
    ("survey-submitted", variant("survey-submitted", csat=6), "csat:", "less than"),
    ("survey-submitted", variant("survey-submitted", nps=11), "nps:", "less than"),
    ("survey-submitted", variant("survey-submitted", nps=-1), "nps:", "greater than"),
    ("assessment-recorded", variant("assessment-recorded", score=100.5), "score:", "less than"),
    ("assessment-recorded", variant("assessment-recorded", score=-0.1), "score:",
     "greater than"),
    ("ticket-opened", variant("ticket-opened", channel="fax"), "channel:", "'fax'"),
    ("ticket-first-response", variant("ticket-first-response", channel="fax"), "channel:",
     "'fax'"),
    ("ticket-opened", variant("ticket-opened", priority="P5"), "priority:", "'P5'"),
    ("assessment-recorded", variant("assessment-recorded", dimension="luck"), "dimension:",
     "'luck'"),
    ("assessment-recorded", variant("assessment-recorded", assessor_role="boss"),
     "assessor_role:", "'boss'"),
    ("complaint-filed", variant("complaint-filed", severity="critical"), "severity:",
     "'critical'"),
    ("ticket-opened", variant("ticket-opened", ticket_id="T" * 129), "ticket_id:", "129"),
    ("ticket-opened", variant("ticket-opened", event_id="e" * 129), "event_id:", "129"),
    ("ticket-opened", variant("ticket-opened", customer_id=""), "customer_id:", "at least 1"),
    ("survey-submitted", variant("survey-submitted", comment="好" * 4001), "comment:", "4001"),
    ("complaint-filed", variant("complaint-filed", reason="x" * 4001), "reason:", "4001"),
    ("assessment-recorded", variant("assessment-recorded", period="2026-13"), "period:", ""),
    ("assessment-recorded", variant("assessment-recorded", period="2026-Q5"), "period:", ""),
    ("assessment-recorded", variant("assessment-recorded", period="11/2026"), "period:", ""),
]


@pytest.mark.parametrize("topic, raw, starts, contains", BAD)
def test_bad_input_is_rejected_naming_the_field(topic, raw, starts, contains):
    rejection = parse_event(topic, raw)
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith(starts) and contains in rejection.reason


@pytest.mark.parametrize("comment, ok", [("好" * 4000, True), ("好" * 4001, False)])
def test_text_limit_counts_characters_not_bytes(comment, ok):
    event = parse_event("survey-submitted", variant("survey-submitted", comment=comment))
    assert isinstance(event, Rejection) is not ok


def test_dead_letter_carries_where_what_and_why(kafka_bootstrap, topic_factory):
    topic = topic_factory(prefix="ticket-opened")
    bad = "{坏的 JSON".encode()
    first, second = asyncio.run(round_trip(kafka_bootstrap, [(topic, variant("ticket-opened")),
                                                              (topic, bad)]))
    rejection = parse_event("ticket-opened", second.value)
    letter = dead_letter("ticket-opened", second.partition, second.offset, second.value,
                         rejection.reason, AT_MS)
    assert {k: v for k, v in letter.items() if k != "raw_base64"} == {
        "topic": "ticket-opened", "partition": 0, "offset": 1,
        "reason": rejection.reason, "rejected_at": AT_MS, "raw_bytes": len(bad),
        "raw_sha256": hashlib.sha256(bad).hexdigest(), "truncated": False}
    assert base64.b64decode(letter["raw_base64"]) == bad
    assert orjson.loads(orjson.dumps(letter)) == letter  # itself publishable as JSON


def test_a_huge_message_has_a_dead_letter_that_fits_with_its_length_and_hash():
    huge = b'{"event_id": "' + b"x" * 950_000 + b'"}'
    letter = dead_letter("ticket-opened", 0, 7, huge, "too large", AT_MS)
    assert len(orjson.dumps(letter)) < 100_000
    assert base64.b64decode(letter["raw_base64"]) == huge[:RAW_KEPT_BYTES]
    assert (letter["raw_bytes"], letter["truncated"]) == (len(huge), True)
    assert letter["raw_sha256"] == hashlib.sha256(huge).hexdigest()


@pytest.mark.parametrize("field", ["requires_onsite", "team_id", "assignee_id", "product",
                                   "source"])
def test_null_means_absent_for_every_optional_field(field):
    event = parse_event("ticket-opened", variant("ticket-opened", **{field: None}))
    assert not isinstance(event, Rejection), event
    assert getattr(event, field) == TicketOpened.model_fields[field].default


@pytest.mark.parametrize("period", ["0000-01", "1899", "2300-Q1", "2026-13", "2026-11-01"])
def test_an_assessment_period_without_a_first_instant_is_refused(period):
    event = parse_event("assessment-recorded", variant("assessment-recorded", period=period))
    assert isinstance(event, Rejection) and event.reason.startswith("period:")


def test_null_in_a_required_field_is_refused_naming_it():
    event = parse_event("ticket-opened", variant("ticket-opened", customer_id=None))
    assert isinstance(event, Rejection) and event.reason.startswith("customer_id:")


def test_dead_letter_of_an_empty_message_has_empty_raw():
    letter = dead_letter("ticket-opened", 2, 40, None, "empty message (no value)", AT_MS)
    assert (letter["raw_base64"], letter["partition"], letter["offset"]) == ("", 2, 40)
