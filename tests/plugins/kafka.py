"""pytest plugin: a Kafka broker for the test session.

``kafka_bootstrap`` (session): the bootstrap address of a broker. With the environment variable
``SERVICESCORE_KAFKA_BOOTSTRAP`` set, that broker is used as is; otherwise a local single-node
broker (servicescore.dev.broker.LocalKafka) starts in a temporary folder on free ports and stops at
the end of the session. The jars come from ``.cache/kafka/lib`` (fetched with Maven if missing).

``topic_factory`` (function): ``topic_factory(partitions=1, prefix="test") -> str`` creates a
uniquely named topic and returns its name; the test's topics are deleted afterwards.

Load it with ``pytest_plugins = ["tests.plugins.kafka"]`` in tests/conftest.py, or
``-p tests.plugins.kafka``.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from servicescore.dev.broker import LocalKafka, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LIB_DIR = REPO_ROOT / ".cache" / "kafka" / "lib"
POM = REPO_ROOT / "servicescore" / "dev" / "kafka" / "pom.xml"  # the shipped one
BOOTSTRAP_ENV = "SERVICESCORE_KAFKA_BOOTSTRAP"
START_TIMEOUT_S = 120


def local_kafka(home: Path) -> LocalKafka:
    """A LocalKafka in ``home`` on free ports, using the repository's jars and pom."""
    return LocalKafka(home, LIB_DIR, POM, port=free_port())  # controller: another free port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    broker = local_kafka(tmp_path_factory.mktemp("kafka"))
    atexit.register(broker.stop)  # in case the session dies before the teardown
    try:
        yield broker.start(timeout=START_TIMEOUT_S)
    finally:
        broker.stop()
        atexit.unregister(broker.stop)


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(partitions: int = 1, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        asyncio.run(create_topic(kafka_bootstrap, name, partitions))
        created.append(name)
        return name

    yield make
    if created:
        asyncio.run(delete_topics(kafka_bootstrap, created))


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create ``name`` and wait until the broker's metadata knows it."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, partitions, 1)])
        for topic, code, *rest in response.topic_errors:
            if code:
                raise RuntimeError(f"creating topic {topic} failed: error {code} {rest}")
        await _wait_for_topic(admin, name)
    finally:
        await admin.close()


async def _wait_for_topic(admin, name: str, timeout_s: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while name not in await admin.list_topics():
        if loop.time() > deadline:
            raise RuntimeError(f"topic {name} did not show up in the metadata")
        await asyncio.sleep(0.05)


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete ``names``, ignoring failures (clean-up only)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        await admin.delete_topics(names)
    except Exception:  # noqa: BLE001 - best effort
        pass
    finally:
        await admin.close()
