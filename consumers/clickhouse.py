"""Writes a batch to ClickHouse: one insert per table, explicit columns, blocking (run it in a
thread). Unreachable storage is a ``SinkBackpressureError`` that the sink retries."""

from __future__ import annotations

from dataclasses import dataclass

from consumers.batch import Batch
from schemas.facts import FACT_TABLES
from servicescore.errors import StorageError
from servicescore.storage import Storage

_BY_TABLE = {t.table: t for t in FACT_TABLES.values()}


@dataclass
class SinkBackpressureError(Exception):
    """ClickHouse refused or could not be reached; retry the same batch after a pause."""

    reason: str


class ClickHouseWriter:
    def __init__(self, storage: Storage):
        self.storage = storage

    def write(self, batch: Batch) -> dict[str, int]:
        """Insert every table of the batch; returns rows per table."""
        written = {}
        for table, facts in batch.tables().items():
            spec = _BY_TABLE[table]
            rows = [spec.row(f) for f in facts]
            try:
                self.storage.insert(table, rows, spec.columns, token=batch.token(table, rows))
            except StorageError as exc:
                raise SinkBackpressureError(str(exc)) from exc
            written[table] = len(rows)
        return written
