"""Kafka topics of the contract, their creation, and how far behind the consumers are."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
)

from schemas.events import DLQ_TOPIC, EVENT_TOPICS, ROSTER_TOPIC
from schemas.facts import FACTS_TOPIC
from servicescore.errors import ServicescoreError
from servicescore.settings import Settings


def topic_plan(settings: Settings) -> dict[str, dict]:
    """Every topic the product uses -> its config (all with the configured partitions)."""
    plan = {settings.topic(t): {} for t in (*EVENT_TOPICS, DLQ_TOPIC, FACTS_TOPIC)}
    plan[settings.topic(ROSTER_TOPIC)] = {"cleanup.policy": "compact"}
    for internal in ("ticket-events", "customer-index"):
        plan[f"{settings.app_id}-{internal}"] = {}
    return plan


def client_options(settings: Settings) -> dict:
    options = {"bootstrap_servers": settings.kafka_bootstrap,
               "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL"):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism or "PLAIN",
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=settings.kafka_sasl_password.get_secret_value()
                       if settings.kafka_sasl_password else None)
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    return options


async def create_topics(settings: Settings) -> list[str]:
    """Create the missing topics; returns the names created (idempotent)."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=15000)
    try:
        await admin.start()
    except KafkaConnectionError:
        raise unreachable(settings) from None
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, settings.partitions, 1, topic_configs=config)
                   for name, config in topic_plan(settings).items() if name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them meanwhile
            await _until_led(admin, [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 15) -> None:
    """New partitions take a moment to get a leader; producing before that only retries."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(names)
        if all(t["error_code"] == 0 and t["partitions"] and
               all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
            return
        await asyncio.sleep(0.1)


async def lag(settings: Settings, group: str, topics: list[str]) -> int:
    """Messages in ``topics`` not yet committed by consumer ``group``."""
    committed, end = await progress(settings, group, topics)
    return end - committed


async def progress(settings: Settings, group: str, topics: list[str]) -> tuple[int, int]:
    """(offsets committed by ``group``, end offsets), summed over the partitions of ``topics``."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    consumer = AIOKafkaConsumer(**client_options(settings))
    await admin.start()
    await consumer.start()
    try:
        described = await admin.describe_topics(topics)
        parts = [TopicPartition(t["topic"], p["partition"]) for t in described
                 for p in t["partitions"]]
        ends = await consumer.end_offsets(parts)
        try:
            committed = await admin.list_consumer_group_offsets(group, partitions=parts)
        except GroupCoordinatorNotAvailableError:
            committed = {}  # the offsets topic is still being created: nothing known committed
        done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        return sum(done.get(tp, 0) for tp in parts), sum(ends[tp] for tp in parts)
    finally:
        await consumer.stop()
        await admin.close()


def unreachable(settings: Settings) -> ServicescoreError:
    return ServicescoreError(
        f"Kafka is not reachable at {settings.kafka_bootstrap} "
        "(start one with `servicescore kafka start` or set SERVICESCORE_KAFKA_BOOTSTRAP)")


def run(coro):
    """asyncio.run, with a lost broker turned into one clear line."""
    try:
        return asyncio.run(coro)
    except KafkaConnectionError as exc:
        raise ServicescoreError(f"Kafka connection failed: {exc}") from None
    except KafkaError as exc:
        raise ServicescoreError(f"Kafka: {exc}") from None
