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
    access: Literal["open", "customer", "mutate"] = "open"  # customer or staff data, a change
    body: str | None = None  # the one parameter sent as the request's body (a scheme file)

    @property
    def method(self) -> str:
        return "POST" if self.access == "mutate" or self.body else "GET"

    @property
    def windowed(self) -> bool:
        return "from_ms" in self.params


OPERATIONS: dict[str, Operation] = {
    "kpis": Operation("/kpis", ("from_ms", "to_ms", "engineer", "team", "group")),
    "tickets": Operation("/tickets", ("from_ms", "to_ms", "engineer", "team"), "customer"),
    "backlog": Operation("/backlog", ("group",)),
    "held": Operation("/held", ("limit",), "customer"),
    "held_summary": Operation("/held/summary", ()),
    "check": Operation("/check", ()),
    "dead_letters": Operation("/dlq", ("limit", "topic"), "customer"),
    "replay_dead_letters": Operation("/dlq/replay", ("limit", "topic"), "mutate"),
    # The period close (appraisal.md): people's scores and bonuses are guarded like customer
    # data; closing and superseding change what HR pays.
    "close": Operation("/close", ("period", "early", "supersede"), "mutate"),
    "appraisals": Operation("/appraisals", ("period", "with_superseded"), "customer"),
    "adjustments": Operation("/adjustments", ("period",), "customer"),
    "score": Operation("/score", ("period", "scheme"), "customer", body="scheme"),
    "assess_import": Operation("/assessments", ("csv",), "mutate", body="csv"),
    "report_data": Operation("/report", ("period", "engineer"), "customer"),
    # The live board (GET /): the charts' KPIs per day, and the grades of the newest closed
    # month (people's grades: guarded like /appraisals).
    "daily_kpis": Operation("/kpis/daily", ("from_ms", "to_ms")),
    "latest_appraisals": Operation("/appraisals/latest", (), "customer"),
}


class Reader(Protocol):
    """The questions the CLI and the API ask, whoever answers them."""

    def kpis(self, from_ms: int, to_ms: int, engineer: str | None = None,
             team: str | None = None, group: str = "engineer") -> list[dict]: ...

    def tickets(self, from_ms: int, to_ms: int, engineer: str | None = None,
                team: str | None = None) -> list[dict]: ...

    def backlog(self, group: str = "engineer") -> list[dict]: ...

    def held(self, limit: int = 100) -> list[dict]: ...

    def held_summary(self) -> dict: ...

    def check(self) -> dict: ...

    def dead_letters(self, limit: int = 100, topic: str | None = None) -> list[dict]: ...

    def replay_dead_letters(self, limit: int = 100, topic: str | None = None) -> int: ...

    def close(self, period: str, early: bool = False, supersede: str | None = None) -> dict: ...

    def appraisals(self, period: str, with_superseded: bool = False) -> list[dict]: ...

    def adjustments(self, period: str) -> list[dict]: ...

    def score(self, period: str, scheme: str | None = None) -> list[dict]: ...

    def assess_import(self, csv: str) -> dict: ...

    def report_data(self, period: str, engineer: str | None = None) -> dict: ...

    def daily_kpis(self, from_ms: int, to_ms: int) -> dict: ...

    def latest_appraisals(self) -> dict: ...
