"""The facts the stream processors emit and the sink writes: table and columns per kind.

Each entry maps a fact kind to its ClickHouse table and its columns with the value a tombstone
(which carries only the key) gets; the DDL is in sql/001_facts.sql. Every row also carries
``version`` (the fact's ``v``) and ``deleted`` (its ``del``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FactTable:
    table: str
    key: tuple[str, ...]  # the table's ORDER BY: a fact's identity
    defaults: dict[str, object]  # column -> value when the fact does not carry it

    @property
    def columns(self) -> list[str]:
        return [*self.defaults, "version", "deleted"]

    def identity(self, fact: dict) -> tuple:
        return tuple(fact[c] for c in self.key)

    def row(self, fact: dict) -> list:
        return [fact.get(c, d) for c, d in self.defaults.items()] + [fact["v"], fact["del"]]


FACT_TABLES: dict[str, FactTable] = {
    "ticket": FactTable("tickets", ("ticket_id",), {
        "ticket_id": "", "customer_id": "", "category": "", "priority": "", "channel": "",
        "team_id": None, "assignee_id": None, "requires_onsite": False, "opened_at": 0,
        "status": "", "episodes": 0, "episode_start": 0, "owner_id": None, "escalations": 0,
        "first_response_at": None, "first_responder_id": None, "frt_s": None, "frt_bh_s": None,
        "onsite_at": None, "onsite_engineer_id": None, "onsite_s": None, "onsite_bh_s": None,
    }),
    "resolution": FactTable("resolutions", ("ticket_id", "episode"), {
        "ticket_id": "", "episode": 0, "engineer_id": "", "resolved_at": 0, "episode_start": 0,
        "aht_s": 0.0, "aht_bh_s": 0.0, "escalated": False, "fcr": False, "reopened_7d": False,
        "reopened_30d": False, "customer_id": "", "category": "", "priority": "",
    }),
    "repeat": FactTable("repeats", ("ticket_id", "episode"), {
        "ticket_id": "", "episode": 0, "new_ticket_7d": False, "new_ticket_30d": False,
    }),
    "survey": FactTable("surveys", ("event_id",), {
        "event_id": "", "ticket_id": "", "submitted_at": 0, "engineer_id": None,
        "credited_by": "", "csat": 0, "nps": None,
    }),
    "escalation": FactTable("escalations", ("event_id",), {
        "event_id": "", "ticket_id": "", "engineer_id": "", "to_engineer_id": None,
        "escalated_at": 0, "episode": 0,
    }),
    "complaint": FactTable("complaints", ("event_id",), {
        "event_id": "", "engineer_id": "", "filed_at": 0, "severity": "", "ticket_id": None,
        "reason": None,
    }),
    "assessment": FactTable("assessments", ("event_id",), {
        "event_id": "", "engineer_id": "", "dimension": "", "score": 0.0, "assessor_role": "",
        "assessor_id": None, "period": None, "effective_at": 0,
    }),
    "roster": FactTable("roster", ("engineer_id",), {
        "engineer_id": "", "name": "", "role": "", "team_id": None, "active": True,
        "updated_at": 0,
    }),
    "dead_letter": FactTable("dead_letters", ("topic", "partition", "offset"), {
        "topic": "", "partition": 0, "offset": 0, "raw_base64": "", "reason": "",
        "rejected_at": 0, "replayed_at": None,
    }),
}
FACTS_TOPIC = "facts"
