"""The contract suite's fixture: ``product(records, config=..., roster=...)`` runs records
through the product's steps into a database of its own (tests/contract/harness.py)."""

from __future__ import annotations

import pytest

from tests.contract.harness import Product, fresh_storage
from tests.oracle import OracleConfig

DEFAULTS = OracleConfig()


@pytest.fixture
def product(chdb_dsn):
    made = []

    def make(records=(), config: OracleConfig = DEFAULTS,
             roster: dict[str, str] | None = None) -> Product:
        made.append(fresh_storage(chdb_dsn))
        return Product(made[-1], config, roster).send(records)

    yield make
    for storage in made:
        storage.command(f"DROP DATABASE IF EXISTS {storage.database}")
