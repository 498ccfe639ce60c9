"""The operations of the service, defined once: what a ``Reader`` answers (the local one on
the storage, the HTTP one asking a running service), and how each is asked over HTTP. The API
registers a route per operation from this table and ``HttpReader`` calls it by the same table,
so a new operation (the period close's, say) is one row here and one method on LocalReader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Operation:
    path: str
    params: tuple[str, ...]  # the reader method's arguments, also the query parameters
    access: Literal["open", "customer", "mutate"] = "open"  # customer data, or a change

    @property
    def method(self) -> str:
        return "POST" if self.access == "mutate" else "GET"

    @property
    def windowed(self) -> bool:
        return "from_ms" in self.params


OPERATIONS: dict[str, Operation] = {
    "kpis": Operation("/kpis", ("from_ms", "to_ms", "engineer", "team", "group")),
    "tickets": Operation("/tickets", ("from_ms", "to_ms", "engineer", "team"), "customer"),
    "backlog": Operation("/backlog", ()),
    "held": Operation("/held", ("limit",), "customer"),
    "held_summary": Operation("/held/summary", ()),
    "check": Operation("/check", ()),
    "dead_letters": Operation("/dlq", ("limit", "topic"), "customer"),
    "replay_dead_letters": Operation("/dlq/replay", ("limit", "topic"), "mutate"),
}


class Reader(Protocol):
    """The questions the CLI and the API ask, whoever answers them."""

    def kpis(self, from_ms: int, to_ms: int, engineer: str | None = None,
             team: str | None = None, group: str = "engineer") -> list[dict]: ...

    def tickets(self, from_ms: int, to_ms: int, engineer: str | None = None,
                team: str | None = None) -> list[dict]: ...

    def backlog(self) -> list[dict]: ...

    def held(self, limit: int = 100) -> list[dict]: ...

    def held_summary(self) -> dict: ...

    def check(self) -> dict: ...

    def dead_letters(self, limit: int = 100, topic: str | None = None) -> list[dict]: ...

    def replay_dead_letters(self, limit: int = 100, topic: str | None = None) -> int: ...
