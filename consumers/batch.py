"""A batch of facts on their way to ClickHouse: rows per table, collapsed by identity.

Within a batch only the highest version of each fact is kept (a ticket's row is re-emitted on
every event of the ticket); ReplacingMergeTree does the same across batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from schemas.facts import FACT_TABLES


@dataclass
class Batch:
    facts: dict[str, dict[tuple, dict]] = field(default_factory=dict)  # table -> identity -> fact
    offsets: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # tp -> range
    messages: int = 0
    oldest_emit_ms: int | None = None
    started: float = field(default_factory=time.monotonic)

    def add(self, fact: dict, topic: str, partition: int, offset: int) -> None:
        table = FACT_TABLES[fact["kind"]]
        rows = self.facts.setdefault(table.table, {})
        identity = table.identity(fact)
        held = rows.get(identity)
        if held is None or fact["v"] >= held["v"]:
            rows[identity] = fact
        if "ts" in fact and (self.oldest_emit_ms is None or fact["ts"] < self.oldest_emit_ms):
            self.oldest_emit_ms = fact["ts"]
        self.skip(topic, partition, offset)

    def skip(self, topic: str, partition: int, offset: int) -> None:
        """Count a message whose offset is committed with the batch, fact or not."""
        first, _ = self.offsets.get((topic, partition), (offset, offset))
        self.offsets[(topic, partition)] = (first, offset)
        self.messages += 1

    def age(self) -> float:
        return time.monotonic() - self.started

    def token(self, table: str) -> str:
        """Names the batch for ClickHouse's insert deduplication (a retried insert is a no-op)."""
        ranges = ",".join(f"{t}:{p}:{a}-{b}" for (t, p), (a, b) in sorted(self.offsets.items()))
        return f"{table}|{ranges}"

    def tables(self) -> dict[str, list[dict]]:
        return {table: list(rows.values()) for table, rows in self.facts.items()}
