"""A batch of messages on their way to ClickHouse: their facts by table, collapsed by identity,
and the messages refused on the way in (dead letters to send before the offsets are committed).

Within a batch only the highest version of each fact is kept (a ticket's row is re-emitted on
every event of the ticket); ReplacingMergeTree does the same across batches. Every row keeps
the message it came from, so a row ClickHouse refuses can be dead-lettered as that message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from consumers.message import Refusal
from schemas.facts import FACT_TABLES


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message was read: enough to commit past it and to dead-letter it."""

    topic: str  # the real (prefixed) topic name
    partition: int
    offset: int
    raw: bytes | None

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass
class Batch:
    accepted: list[tuple[Source, list[dict]]] = field(default_factory=list)
    refused: list[tuple[Source, Refusal]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(self, source: Source, facts: list[dict]) -> None:
        """The facts of one message (none for a message that held no fact: its offset is
        still committed with the batch)."""
        self.accepted.append((source, facts))

    def refuse(self, source: Source, refusal: Refusal) -> None:
        self.refused.append((source, refusal))

    def drop(self, partitions) -> None:
        """Forget the messages of revoked partitions: their new owner reads them again."""
        gone = set(partitions)
        self.accepted = [(s, f) for s, f in self.accepted if s.tp not in gone]
        self.refused = [(s, r) for s, r in self.refused if s.tp not in gone]

    @property
    def messages(self) -> int:
        return len(self.accepted) + len(self.refused)

    def age(self) -> float:
        return time.monotonic() - self.started

    def offsets(self) -> dict[TopicPartition, int]:
        """The offset to commit per partition: past its last message in the batch."""
        last: dict[TopicPartition, int] = {}
        for source, _ in [*self.accepted, *self.refused]:
            last[source.tp] = max(last.get(source.tp, -1), source.offset + 1)
        return last

    def tables(self) -> dict[str, list[tuple[dict, Source]]]:
        """table -> (fact, its message), the highest version per identity."""
        kept: dict[str, dict[tuple, tuple[dict, Source]]] = {}
        for source, facts in self.accepted:
            for fact in facts:
                table = FACT_TABLES[fact["kind"]]
                rows = kept.setdefault(table.table, {})
                identity = table.identity(fact)
                held = rows.get(identity)
                if held is None or fact["v"] >= held[0]["v"]:
                    rows[identity] = (fact, source)
        return {table: list(rows.values()) for table, rows in kept.items()}

    def oldest_emit_ms(self) -> int | None:
        """When the stream processor emitted the oldest fact (``ts``), for the lag metric."""
        stamps = [f["ts"] for _, facts in self.accepted for f in facts
                  if isinstance(f.get("ts"), int) and not isinstance(f["ts"], bool)]
        return min(stamps, default=None)
