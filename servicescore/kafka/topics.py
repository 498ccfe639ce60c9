"""Kafka topics of the contract, their creation, and how far behind the consumers are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
)

from schemas.events import (
    DLQ_TOPIC,
    EVENT_TOPICS,
    ROSTER_TOPIC,
    intake_group,
    ticket_events_topic,
)
from schemas.facts import FACTS_TOPIC
from servicescore.core.errors import ServicescoreError
from servicescore.kafka.client import Cluster


def topic_plan(cluster: Cluster) -> dict[str, dict]:
    """Every topic the product uses -> its config (all with the configured partitions)."""
    plan = {cluster.topic(t): {} for t in (*EVENT_TOPICS, DLQ_TOPIC, FACTS_TOPIC)}
    plan[cluster.topic(ROSTER_TOPIC)] = {"cleanup.policy": "compact"}
    plan[ticket_events_topic(cluster.app_id)] = {}
    return plan


def sink_group(app_id: str) -> str:
    """The sinks' consumer group (the workers' is the app id itself, as Faust names it)."""
    return f"{app_id}-sink"


def consumer_groups(cluster: Cluster) -> dict[str, list[str]]:
    """Consumer group -> the topics it reads: the workers' intake, their lifecycle (Faust uses
    the app id) and the sinks."""
    sink_topics = [cluster.topic(t) for t in (FACTS_TOPIC, DLQ_TOPIC, ROSTER_TOPIC)]
    internal = [name for name in topic_plan(cluster) if name.startswith(f"{cluster.app_id}-")]
    return {intake_group(cluster.app_id): [cluster.topic(t) for t in EVENT_TOPICS],
            cluster.app_id: internal,
            sink_group(cluster.app_id): sink_topics}


async def check_reachable(cluster: Cluster, timeout_s: float) -> None:
    """One metadata request; raises (KafkaError, OSError, TimeoutError) when it gets no answer
    within ``timeout_s``."""
    client = AIOKafkaClient(**cluster.options(),
                            request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
    finally:
        await client.close()


async def create_topics(cluster: Cluster) -> list[str]:
    """Create the missing topics; returns the names created (idempotent)."""
    admin = AIOKafkaAdminClient(**cluster.options(), request_timeout_ms=15000)
    try:
        await admin.start()
    except KafkaConnectionError:
        raise unreachable(cluster) from None
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, cluster.partitions, 1, topic_configs=config)
                   for name, config in topic_plan(cluster).items() if name not in existing]
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


async def lag(cluster: Cluster, group: str, topics: list[str]) -> int:
    """Messages in ``topics`` not yet committed by consumer ``group``."""
    committed, end = await progress(cluster, group, topics)
    return end - committed


async def progress(cluster: Cluster, group: str, topics: list[str]) -> tuple[int, int]:
    """(offsets committed by ``group``, end offsets), summed over the partitions of ``topics``."""
    async with offset_clients(cluster) as clients:
        parts = await partition_progress(*clients, group, topics)
    return sum(done for done, _ in parts.values()), sum(end for _, end in parts.values())


@asynccontextmanager
async def offset_clients(cluster: Cluster) -> AsyncIterator[tuple]:
    """(admin, consumer), started, for ``partition_progress``; a long-lived caller keeps them."""
    admin = AIOKafkaAdminClient(**cluster.options())
    consumer = AIOKafkaConsumer(**cluster.options())
    try:
        await admin.start()
        await consumer.start()
        yield admin, consumer
    finally:
        await consumer.stop()
        await admin.close()


async def partition_progress(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer,
                             group: str, topics: list[str]) -> dict[TopicPartition, tuple]:
    """Partition of ``topics`` -> (offset committed by ``group``, 0 if none; end offset)."""
    described = await admin.describe_topics(topics)
    parts = [TopicPartition(t["topic"], p["partition"]) for t in described
             for p in t["partitions"]]
    ends = await consumer.end_offsets(parts)
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=parts)
    except GroupCoordinatorNotAvailableError:
        committed = {}  # the offsets topic is still being created: nothing known committed
    done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
    return {tp: (done.get(tp, 0), ends[tp]) for tp in parts}


def unreachable(cluster: Cluster) -> ServicescoreError:
    return ServicescoreError(
        f"Kafka is not reachable at {cluster.connection.bootstrap} "
        "(start one with `servicescore kafka start` or set SERVICESCORE_KAFKA_BOOTSTRAP)")


def run(coro):
    """asyncio.run, with a lost broker turned into one clear line."""
    try:
        return asyncio.run(coro)
    except KafkaConnectionError as exc:
        raise ServicescoreError(f"Kafka connection failed: {exc}") from None
    except KafkaError as exc:
        raise ServicescoreError(f"Kafka: {exc}") from None
