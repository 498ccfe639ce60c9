"""The facts the stream processors emit and the sink writes: table and typed columns per kind.

The column contract sits next to the DDL (sql/001_facts.sql, sql/002_roster_dlq.sql,
sql/007_partitions.sql). Every row also carries ``version`` (the fact's ``v``) and ``deleted``
(its ``del``). A tombstone carries only the identity columns; the others get their type's
neutral value.

A table partitioned by event time (``moves``: its time column) holds that column in its
identity, so a fact never leaves its partition: a fact whose time is corrected is a new
identity (in its new partition), and the old identity gets a tombstone carrying the old time,
which lands in the old partition and replaces the old row there (docs/decisions.md,
"Partitions by event time").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

# column type -> (accepted Python types, the value a tombstone gets)
_TYPES: dict[str, tuple[tuple[type, ...], object]] = {
    "str": ((str,), ""),
    "int": ((int,), 0),
    "ms": ((int,), 0),  # UTC epoch milliseconds, DateTime64(3, 'UTC')
    "float": ((int, float), 0.0),
    "bool": ((bool,), False),
}


@dataclass(frozen=True)
class FactTable:
    table: str
    key: tuple[str, ...]  # the table's ORDER BY: a fact's identity
    types: dict[str, str]  # column -> type; a trailing "?" means Nullable
    moves: str | None = None  # the identity's time column, which a correction may change

    @cached_property  # read for every fact the worker emits
    def stable(self) -> tuple[str, ...]:
        """The identity less its time: what stays the same fact when its time is corrected."""
        return tuple(c for c in self.key if c != self.moves)

    @property
    def columns(self) -> list[str]:
        return [*self.types, "version", "deleted"]

    def identity(self, fact: dict) -> tuple:
        return tuple([fact[c] for c in self.key])

    def row(self, fact: dict) -> list:
        get = fact.get
        return [get(c, neutral) for c, neutral in self._neutrals] + [fact["v"], fact["del"]]

    @cached_property  # the sink builds a row per fact
    def _neutrals(self) -> tuple[tuple[str, object], ...]:
        return tuple((c, _neutral(t)) for c, t in self.types.items())

    def problem(self, fact: dict) -> str | None:
        """Why ``fact`` cannot be a row of this table, or None when it can."""
        if not _is(fact.get("v"), (int,)) or fact["v"] < 0:
            return "v: must be a non-negative integer"
        if fact.get("del") not in (0, 1) or isinstance(fact.get("del"), bool):
            return "del: must be 0 or 1"
        for column in self.key:
            if fact.get(column) is None:
                return f"{column}: identity column missing"
        for column, kind in self.types.items():
            value = fact.get(column)
            if value is None:
                if column in fact and not kind.endswith("?") and not fact["del"]:
                    return f"{column}: null in a non-nullable column"
                continue
            if not _is(value, _TYPES[kind.rstrip("?")][0]):
                return f"{column}: expected {kind.rstrip('?')}, got {type(value).__name__}"
        return None


def _is(value: object, types: tuple[type, ...]) -> bool:
    # bool is an int in Python; only a bool column takes one
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def _neutral(kind: str) -> object:
    return None if kind.endswith("?") else _TYPES[kind][1]


FACT_TABLES: dict[str, FactTable] = {
    "ticket": FactTable("tickets", ("opened_at", "ticket_id"), {
        "ticket_id": "str", "customer_id": "str", "category": "str", "priority": "str",
        "channel": "str", "team_id": "str?", "assignee_id": "str?", "requires_onsite": "bool",
        "opened_at": "ms", "status": "str", "episodes": "int", "episode_start": "ms",
        "owner_id": "str?", "escalations": "int", "surveys": "int",
        "first_response_at": "ms?", "first_responder_id": "str?", "frt_s": "float?",
        "frt_bh_s": "float?", "onsite_at": "ms?", "onsite_engineer_id": "str?",
        "onsite_s": "float?", "onsite_bh_s": "float?",
    }, moves="opened_at"),
    "resolution": FactTable("resolutions", ("resolved_at", "ticket_id", "episode"), {
        "ticket_id": "str", "episode": "int", "engineer_id": "str", "resolved_at": "ms",
        "episode_start": "ms", "aht_s": "float", "aht_bh_s": "float", "escalated": "bool",
        "fcr": "bool", "reopened_7d": "bool", "reopened_30d": "bool", "customer_id": "str",
        "category": "str", "priority": "str",
    }, moves="resolved_at"),
    "survey": FactTable("surveys", ("submitted_at", "event_id"), {
        "event_id": "str", "ticket_id": "str", "submitted_at": "ms", "engineer_id": "str?",
        "credited_by": "str", "csat": "int", "nps": "int?",
    }, moves="submitted_at"),
    "escalation": FactTable("escalations", ("escalated_at", "event_id"), {
        "event_id": "str", "ticket_id": "str", "engineer_id": "str", "to_engineer_id": "str?",
        "escalated_at": "ms", "episode": "int",
    }, moves="escalated_at"),
    "complaint": FactTable("complaints", ("event_id",), {
        "event_id": "str", "engineer_id": "str", "filed_at": "ms", "severity": "str",
        "ticket_id": "str?", "reason": "str?",
    }),
    "assessment": FactTable("assessments", ("event_id",), {
        "event_id": "str", "engineer_id": "str", "dimension": "str", "score": "float",
        "assessor_role": "str", "assessor_id": "str?", "period": "str?", "effective_at": "ms",
    }),
    "roster": FactTable("roster", ("engineer_id",), {
        "engineer_id": "str", "name": "str", "role": "str", "team_id": "str?", "active": "bool",
        "updated_at": "ms",
    }),
    "dead_letter": FactTable("dead_letters", ("topic", "partition", "offset"), {
        "topic": "str", "partition": "int", "offset": "int", "raw_base64": "str",
        "reason": "str", "rejected_at": "ms", "replayed_at": "ms?", "raw_bytes": "int",
        "raw_sha256": "str", "truncated": "bool",
    }),
    "held": FactTable("held_events", ("ticket_id", "event_id"), {
        "ticket_id": "str", "event_id": "str", "event_kind": "str", "occurred_at": "ms",
        "held_since": "ms",
    }),
}
FACTS_TOPIC = "facts"
