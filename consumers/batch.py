"""A batch of facts on their way to ClickHouse: rows per table, collapsed by identity.

Within a batch only the highest version of each fact is kept (a ticket's row is re-emitted on
every event of the ticket); ReplacingMergeTree does the same across batches.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import orjson

from schemas.facts import FACT_TABLES


@dataclass
class Batch:
    facts: dict[str, dict[tuple, dict]] = field(default_factory=dict)  # table -> identity -> fact
    offsets: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # tp -> range
    messages: int = 0
    oldest_emit_ms: int | None = None
    started: float = field(default_factory=time.monotonic)

    def add(self, facts: list[dict], topic: str, partition: int, offset: int) -> None:
        """The facts of one message (none for a message that held no fact: its offset is
        still committed with the batch)."""
        for fact in facts:
            table = FACT_TABLES[fact["kind"]]
            rows = self.facts.setdefault(table.table, {})
            identity = table.identity(fact)
            held = rows.get(identity)
            if held is None or fact["v"] >= held["v"]:
                rows[identity] = fact
            if "ts" in fact and (self.oldest_emit_ms is None or fact["ts"] < self.oldest_emit_ms):
                self.oldest_emit_ms = fact["ts"]
        first, _ = self.offsets.get((topic, partition), (offset, offset))
        self.offsets[(topic, partition)] = (first, offset)
        self.messages += 1

    def age(self) -> float:
        return time.monotonic() - self.started

    def token(self, table: str, rows: list[list]) -> str:
        """Names the batch's rows for ClickHouse's insert deduplication: a retried insert of the
        same rows is a no-op. By content, not by offsets, which a recreated topic reuses."""
        digest = hashlib.blake2b(orjson.dumps(rows), digest_size=16).hexdigest()
        return f"{table}|{len(rows)}|{digest}"

    def tables(self) -> dict[str, list[dict]]:
        return {table: list(rows.values()) for table, rows in self.facts.items()}
