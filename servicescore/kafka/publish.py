"""Publishing events to Kafka: JSON Lines replay, simulated traffic, dead-letter replay."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from schemas.deadletter import REPLAY_HEADER
from schemas.events import EVENT_TOPICS
from servicescore.kafka.client import Cluster


def read_jsonl(files: Iterable[Path]) -> tuple[list[tuple[str, object]], list[str]]:
    """(topic, event) records and a line per problem ('FILE:LINE: reason'). An ``event`` that
    is a string is published as its raw bytes (for testing the dead-letter path)."""
    records, problems = [], []
    for path in files:
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            problems.append(f"{path}: cannot read ({exc.strerror})")
            continue
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                problems.append(f"{path}:{n}: not a JSON object")
                continue
            if not isinstance(item, dict) or item.get("topic") not in EVENT_TOPICS \
                    or "event" not in item:
                problems.append(f"{path}:{n}: needs \"topic\" (one of the event topics) "
                                f"and \"event\"")
                continue
            records.append((item["topic"], item["event"]))
    return records, problems


def _value(event: object) -> bytes:
    if isinstance(event, bytes):
        return event
    return event.encode() if isinstance(event, str) else orjson.dumps(event)


def _key(event: object) -> bytes | None:
    if isinstance(event, dict):
        key = event.get("ticket_id") or event.get("engineer_id")
        return key.encode() if isinstance(key, str) else None
    return None


async def publish(cluster: Cluster, records: Iterable[tuple[str, object]]) -> int:
    """Send every (topic, event); keyed by ticket_id (or engineer_id) when it has one. An
    event is a JSON-able object, or str/bytes sent as they are."""
    return await _send_all(cluster, ((topic, _value(event), _key(event), None)
                                      for topic, event in records))


async def republish_dead_letters(cluster: Cluster, letters: list[dict]) -> int:
    """Each dead letter's original bytes, unchanged, to its source topic, marked with the
    letter's identity: if it is refused again, its new dead letter replaces this one."""
    return await _send_all(cluster, (
        (row["topic"], base64.b64decode(row["raw_base64"]), None,
         [(REPLAY_HEADER, f"{row['topic']}:{row['partition']}:{row['offset']}".encode())])
        for row in letters))


async def _send_all(cluster: Cluster, messages) -> int:
    """Send (topic, value, key, headers) messages; returns once the broker acknowledged every
    one of them (a failed delivery raises instead of counting as sent)."""
    async with _producer(cluster) as producer:
        pending = [await producer.send(cluster.topic(topic), value, key=key, headers=headers)
                   for topic, value, key, headers in messages]
        await asyncio.gather(*pending)
    return len(pending)


class _producer:
    def __init__(self, cluster: Cluster):
        from servicescore.kafka.topics import unreachable

        self.cluster = cluster
        self.unreachable = unreachable
        self.producer = AIOKafkaProducer(**cluster.options(), acks="all",
                                         linger_ms=20, max_batch_size=256 * 1024)

    async def __aenter__(self) -> AIOKafkaProducer:
        try:
            await self.producer.start()
        except KafkaConnectionError:
            await self.producer.stop()
            raise self.unreachable(self.cluster) from None
        return self.producer

    async def __aexit__(self, *exc) -> None:
        await self.producer.stop()
