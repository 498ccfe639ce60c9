"""The roster (engineer_id, name, role, team_id, active): CSV import, storage, Kafka topic."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from pydantic import ValidationError

from schemas.deadletter import describe
from schemas.events import ROSTER_TOPIC
from schemas.facts import FACT_TABLES
from schemas.roster import RosterRecord
from servicescore.core.errors import ServicescoreError
from servicescore.core.settings import Settings
from servicescore.storage.clickhouse import Storage

HEADER = ["engineer_id", "name", "role", "team_id", "active"]
_TRUE, _FALSE = {"true", "1", "yes", "y", "是"}, {"false", "0", "no", "n", "否"}


def read_csv(path: Path) -> list[dict]:
    """Every row, validated; the first bad one raises naming its line and field."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ServicescoreError(f"cannot read roster {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ServicescoreError(f"roster {path} is not UTF-8") from None
    reader = csv.DictReader(text.splitlines())
    if [h.strip() for h in reader.fieldnames or []] != HEADER:
        raise ServicescoreError(f"{path}: header must be {','.join(HEADER)}")
    return [parse_row(row, f"{path}:{n}") for n, row in enumerate(reader, start=2)]


def parse_row(row: dict, where: str) -> dict:
    """A CSV row -> a roster record, validated by the same model as the engineer-roster topic."""
    try:
        record = RosterRecord.model_validate(from_csv(row))
    except ValidationError as exc:
        raise ServicescoreError(f"{where}: {describe(exc)}") from None
    return record.model_dump()


def from_csv(row: dict) -> dict:
    """CSV has only strings: an empty cell is absent, ``active`` is a yes/no word. A word that
    is neither stays a string, which the model refuses, naming the field."""
    values = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    data = {k: v for k, v in values.items() if v}
    active = data.get("active", "").lower()
    if active in _TRUE | _FALSE:
        data["active"] = active in _TRUE
    return data


def from_engineer(engineer) -> dict:
    return {"engineer_id": engineer.engineer_id, "name": engineer.name, "role": engineer.role,
            "team_id": engineer.team_id, "active": engineer.active}


def store(storage: Storage, rows: list[dict]) -> None:
    now = int(time.time() * 1000)
    spec = FACT_TABLES["roster"]
    facts = [{**r, "kind": "roster", "updated_at": now, "v": now, "del": 0} for r in rows]
    storage.insert(spec.table, [spec.row(f) for f in facts], spec.columns)


async def publish(settings: Settings, rows: list[dict]) -> None:
    """To the compacted engineer-roster topic, keyed by engineer_id (the sink stores it)."""
    from servicescore.kafka import publish as kafka
    from servicescore.kafka.client import Cluster

    await kafka.publish(Cluster.of(settings), [(ROSTER_TOPIC, row) for row in rows])
