"""Writes a batch to ClickHouse: one insert per table, explicit columns, blocking (run it in a
thread).

An insert can fail because of the storage (unreachable, table detached, disk full...) or
because of a row (a value the driver cannot encode or the engine refuses). The first is a
``SinkBackpressureError``: the sink retries the same batch later. The second must not stop the
sink: the rows are bisected until the refused ones are found; they come back as refusals (the
sink dead-letters their messages) and the rest is inserted.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import orjson

from consumers.batch import Batch, Source
from schemas.facts import FACT_TABLES, FactTable

_BY_TABLE = {t.table: t for t in FACT_TABLES.values()}
# Errors in which the engine says the storage, not the data, is the problem.
_STORAGE_STATE = re.compile(
    r"\((UNKNOWN_TABLE|UNKNOWN_DATABASE|TIMEOUT_EXCEEDED|READONLY|TABLE_IS_READ_ONLY|"
    r"TOO_MANY_SIMULTANEOUS_QUERIES|SOCKET_TIMEOUT|NETWORK_ERROR|MEMORY_LIMIT_EXCEEDED|"
    r"NOT_ENOUGH_SPACE|TOO_MANY_PARTS|UNKNOWN_STATUS_OF_INSERT|QUERY_WAS_CANCELLED|"
    r"KEEPER_EXCEPTION|ABORTED)\)")


@dataclass
class SinkBackpressureError(Exception):
    """ClickHouse refused or could not be reached; retry the same batch after a pause."""

    reason: str


@dataclass
class Written:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows inserted
    refused: list[tuple[Source, str]] = field(default_factory=list)  # message, engine's reason


def token(table: str, rows: list[list]) -> str:
    """Names rows for ClickHouse's insert deduplication: a retried insert of the same rows is a
    no-op. By content, not by offsets, which a recreated topic reuses."""
    digest = hashlib.blake2b(orjson.dumps(rows), digest_size=16).hexdigest()
    return f"{table}|{len(rows)}|{digest}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


class ClickHouseWriter:
    def __init__(self, storage):
        self.storage = storage

    def write(self, batch: Batch) -> Written:
        """Insert every table of the batch; rows the engine refuses are returned, not raised."""
        written = Written()
        for table, facts in batch.tables().items():
            spec = _BY_TABLE[table]
            refused = self.insert(spec, [(spec.row(f), source) for f, source in facts])
            written.rows[table] = len(facts) - len(refused)
            written.refused += refused
        return written

    def insert(self, spec: FactTable, items: list[tuple[list, Source]]) -> list[tuple[Source, str]]:
        """Insert the rows, or find the ones the engine refuses by bisection."""
        error = self._attempt(spec, items)
        if error is not None:
            error = self._attempt(spec, items)  # same token: a lost reply's retry is a no-op
        if error is None:
            return []
        if len(items) == 1:
            return [(items[0][1], first_line(error))]
        half = len(items) // 2
        return self.insert(spec, items[:half]) + self.insert(spec, items[half:])

    def _attempt(self, spec: FactTable, items: list[tuple[list, Source]]) -> Exception | None:
        """None when inserted; the error when a row is to blame; raises when the storage is."""
        rows = [row for row, _ in items]
        try:
            self.storage.insert(spec.table, rows, spec.columns, token=token(spec.table, rows))
            return None
        except Exception as exc:  # noqa: BLE001 - a value the driver cannot encode raises anything
            if _STORAGE_STATE.search(str(exc)) or not self._reachable(spec.table):
                raise SinkBackpressureError(first_line(exc)) from exc
            return exc

    def _reachable(self, table: str) -> bool:
        """The storage answers and has the table: then a failed insert is the rows' fault."""
        try:
            self.storage.rows(f"SELECT 1 FROM {table} WHERE 0")
            return True
        except Exception:  # noqa: BLE001 - whatever the cause, the storage is not usable
            return False
