"""The contract suite's fixture: ``product(records, config=..., roster=...)`` runs records
through the product's steps into the test's database (tests/contract/harness.py)."""

from __future__ import annotations

import uuid

import pytest

from schemas.facts import FACT_TABLES
from servicescore.storage.clickhouse import Storage
from tests.contract.harness import Product
from tests.oracle import OracleConfig

DEFAULTS = OracleConfig()


@pytest.fixture(scope="session")
def contract_storage(chdb_dsn):
    """One migrated database for the suite: migrating takes longer than most tests."""
    storage = Storage(chdb_dsn, f"contract_{uuid.uuid4().hex[:12]}")
    storage.migrate()
    yield storage
    storage.command(f"DROP DATABASE IF EXISTS {storage.database}")


@pytest.fixture
def product(contract_storage):
    """Each call empties the facts and the roster first, and writes the configuration's
    targets and weights (a later sync replaces an earlier one), so a test compares one
    product at a time and sees nothing of another test."""
    storage = contract_storage
    made: list[Product] = []

    def make(records=(), config: OracleConfig = DEFAULTS,
             roster: dict[str, str] | None = None) -> Product:
        for earlier in made:
            earlier.retire()
        for spec in FACT_TABLES.values():
            storage.command(f"TRUNCATE TABLE {spec.table}")
        made.append(Product(storage, config, roster))
        return made[-1].send(records)

    return make
