"""The local Kafka broker (servicescore.dev.broker), against real brokers: no mocks."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest

from servicescore.core.errors import BrokerError
from servicescore.dev.broker import LocalKafka, free_port
from tests.plugins.kafka import LIB_DIR, POM, local_kafka


async def produce_and_consume(bootstrap: str, topic: str, values: list[dict]) -> list[dict]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, json.dumps(value, ensure_ascii=False).encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"g-{topic}", enable_auto_commit=False)
    await consumer.start()
    try:
        got: list[dict] = []
        while len(got) < len(values):
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            got += [json.loads(msg.value) for part in batch.values() for msg in part]
        return got
    finally:
        await consumer.stop()


def test_json_with_chinese_text_round_trips(kafka_bootstrap, topic_factory):
    topic = topic_factory(partitions=1)
    values = [{"ticket_id": f"T-{i}", "note": "客户反馈：打印机卡纸，已上门处理 ✓", "n": i}
              for i in range(5)]
    assert asyncio.run(produce_and_consume(kafka_bootstrap, topic, values)) == values


def test_topic_factory_makes_unique_topics_with_partitions(kafka_bootstrap, topic_factory):
    from aiokafka.admin import AIOKafkaAdminClient

    first, second = topic_factory(partitions=3), topic_factory(partitions=3)
    assert first != second

    async def partitions_of(name: str) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([name])
            return len(described["partitions"])
        finally:
            await admin.close()

    assert asyncio.run(partitions_of(first)) == 3


@pytest.fixture
def own_broker(tmp_path: Path):
    broker = local_kafka(tmp_path / "kafka")
    yield broker
    broker.stop()


def test_start_twice_stop_and_status(own_broker: LocalKafka):
    started = time.monotonic()
    bootstrap = own_broker.start()
    print(f"broker start took {time.monotonic() - started:.1f} s")
    pid = own_broker.status()["pid"]
    assert own_broker.status()["running"] and pid
    again = LocalKafka(own_broker.home, LIB_DIR, POM, port=own_broker.port)
    assert again.start() == bootstrap
    assert again.status()["pid"] == pid
    elsewhere = LocalKafka(own_broker.home, LIB_DIR, POM, port=free_port())
    with pytest.raises(BrokerError, match="already runs on port"):
        elsewhere.start()
    assert own_broker.status()["running"]
    assert own_broker.stop() is True
    status = own_broker.status()
    assert status["running"] is False and status["pid"] is None
    assert status["bootstrap"] == bootstrap
    assert own_broker.stop() is False


def test_occupied_port_fails_fast_with_clear_message(tmp_path: Path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = LocalKafka(tmp_path / "kafka", LIB_DIR, POM, port=port)
        # The refusal names the taken port (it is not the start timeout's message).
        with pytest.raises(BrokerError, match=f"127.0.0.1:{port} is already in use"):
            broker.start(timeout=30)
        assert broker.status()["running"] is False


def test_early_exit_names_the_log_and_its_reason(tmp_path: Path):
    broker = LocalKafka(tmp_path / "kafka", LIB_DIR, POM, port=free_port(), heap="2m")
    with pytest.raises(BrokerError) as caught:
        broker.start(timeout=60)
    message = str(caught.value)
    assert "exited during start-up" in message and str(broker.home / "logs") in message
    assert "OutOfMemoryError" in message and "\n" not in message
    assert broker.status()["pid"] is None


def test_invalid_heap_is_refused():
    with pytest.raises(BrokerError, match="heap"):
        LocalKafka(Path("unused"), LIB_DIR, POM, heap="lots")


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
