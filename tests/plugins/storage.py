"""Embedded ClickHouse for tests: one chDB folder per test session (chDB allows one engine
per process), a fresh database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from servicescore.storage.clickhouse import Storage


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture
def storage(chdb_dsn: str) -> Iterator[Storage]:
    """A migrated, empty database of its own."""
    database = f"test_{uuid.uuid4().hex[:12]}"
    store = Storage(chdb_dsn, database)
    store.migrate()
    yield store
    store.command(f"DROP DATABASE IF EXISTS {database}")
