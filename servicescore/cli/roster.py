"""``roster import``: the engineers, their roles and teams, from CSV (the reference data)."""

from __future__ import annotations

from pathlib import Path

from servicescore.core.errors import StorageLocked
from servicescore.core.settings import Settings


def register(sub) -> None:
    roster = sub.add_parser("roster", help="reference data: engineers, roles, teams")
    roster.add_argument("action", choices=("import",))
    roster.add_argument("file", type=Path, help="CSV: engineer_id,name,role,team_id,active")
    roster.set_defaults(handler=cmd_roster)


def cmd_roster(settings: Settings, args) -> int:
    from servicescore.app import roster

    rows = roster.read_csv(args.file)
    try:
        from servicescore.app.service import open_storage

        roster.store(open_storage(settings, migrate=True), rows)  # a write may migrate
        where = "ClickHouse"
    except StorageLocked:
        # The running service holds the storage: its sink stores what the topic carries.
        from servicescore.kafka import topics

        topics.run(roster.publish(settings, rows))
        where = f"topic {settings.topic('engineer-roster')} (the running sink stores it)"
    print(f"imported {len(rows)} engineer(s) into {where}")
    return 0
