"""The sink's dead letters to events-dlq. ``send`` returns only once the broker has every one
(acks=all), so the sink commits no offset past a message whose dead letter is not written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaProducer


class DeadLetterProducer:
    def __init__(self, producer_factory: Callable[[], AIOKafkaProducer], topic: str):
        """A factory, because aiokafka clients belong to the loop they are made in (the sink
        runs in one made later); ``topic`` is the real (prefixed) events-dlq."""
        self.producer_factory = producer_factory
        self.topic = topic
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self.producer = self.producer_factory()
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def send(self, letters: list[dict]) -> None:
        """Raises a KafkaError when the broker did not take them all (the sink retries)."""
        acks = [await self.producer.send(self.topic, orjson.dumps(letter), key=key(letter))
                for letter in letters]
        await asyncio.gather(*acks)


def key(letter: dict) -> bytes:
    """As the stream processors key theirs: one key per refused message."""
    return f"{letter['topic']}:{letter['partition']}:{letter['offset']}".encode()
