"""How long the 30-day KPIs of every engineer take over many facts: `python -m bench.query`.

N synthetic facts (about 65 % resolutions, 20 % tickets, 15 % surveys; 1,000 engineers in 40
teams; one year of event time) go into a fresh embedded ClickHouse through the project's
storage layer and migrations, generated inside the engine by ``INSERT ... SELECT`` from
``numbers()`` (a Python loop would take longer than the query). One resolution in a thousand
is then corrected the way the pipeline corrects it: a newer version whose ``resolved_at`` moved
back by up to 40 days (so some cross a month boundary), plus, when the table's identity holds
the time (schemas/facts.py), a tombstone of the old identity. Then the project's own query
(``servicescore.queries.kpis.compute``, what ``servicescore kpis`` runs) asks the KPIs of the
last 30 days for all engineers: one warm-up, best of three.

    python -m bench.query --facts 10000000
    python -m bench.query --facts 1000000 --folder /tmp/bench-ch   # keeps the data
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import tempfile
import time

from schemas.facts import FACT_TABLES
from schemas.roster import ROLES
from servicescore.queries import kpis
from servicescore.storage.clickhouse import Storage

ENGINEERS = 1000
TEAMS = 40
DAY_MS = 86_400_000
START_MS = 1_764_547_200_000  # 2025-12-01T00:00:00Z: the year of event time starts here
YEAR_MS = 365 * DAY_MS
WINDOW_MS = 30 * DAY_MS
SHARES = {"resolution": 0.65, "ticket": 0.20, "survey": 0.15}
CORRECTED = 1000  # one resolution in this many is corrected


def _at(expr: str) -> str:
    """A DateTime64 of ``expr`` epoch milliseconds."""
    return f"fromUnixTimestamp64Milli(toInt64({expr}), 'UTC')"


def _select(kind: str, count: int, tickets: int) -> str:
    """The columns of FACT_TABLES[kind], in order, for rows ``number`` of ``numbers(count)``."""
    opened = f"{START_MS} + cityHash64(t, 'o') % {YEAR_MS}"
    exprs = {
        "ticket": {
            "ticket_id": "concat('T', toString(t))",
            "customer_id": "concat('C', toString(cityHash64(t, 'c') % 50000))",
            "category": "['pc', 'printer', 'network', 'phone'][1 + t % 4]",
            "priority": "['P1', 'P2', 'P3', 'P4'][1 + cityHash64(t, 'p') % 4]",
            "channel": "'phone'", "team_id": "NULL", "assignee_id": "NULL",
            "requires_onsite": "false", "opened_at": _at(opened), "status": "'resolved'",
            "episodes": "1", "episode_start": _at(opened), "owner_id": "NULL",
            "escalations": "0", "surveys": "0",
            "first_response_at": _at(f"{opened} + 60000 + cityHash64(t, 'f') % 7200000"),
            "first_responder_id": "concat('E', leftPad(toString(cityHash64(t, 'e') % "
                                  f"{ENGINEERS}), 5, '0'))",
            "frt_s": "60 + (cityHash64(t, 'f') % 7200000) / 1000",
            "frt_bh_s": "(60 + (cityHash64(t, 'f') % 7200000) / 1000) / 2",
            "onsite_at": "NULL", "onsite_engineer_id": "NULL", "onsite_s": "NULL",
            "onsite_bh_s": "NULL",
        },
        "resolution": {
            "ticket_id": "concat('T', toString(t))", "episode": f"1 + intDiv(number, {tickets})",
            "engineer_id": f"concat('E', leftPad(toString(cityHash64(number, 'e') % {ENGINEERS}"
                           "), 5, '0'))",
            "resolved_at": _at(f"{START_MS} + cityHash64(number, 'r') % {YEAR_MS}"),
            "episode_start": _at(f"{START_MS} + cityHash64(number, 'r') % {YEAR_MS} - "
                                 "cityHash64(number, 'a') % 200000000"),
            "aht_s": "(cityHash64(number, 'a') % 200000000) / 1000",
            "aht_bh_s": "(cityHash64(number, 'a') % 200000000) / 3000",
            "escalated": "cityHash64(number, 'x') % 10 = 0",
            "fcr": "cityHash64(number, 'x') % 10 > 2", "reopened_7d": "number % 20 = 0",
            "reopened_30d": "number % 15 = 0",
            "customer_id": "concat('C', toString(cityHash64(t, 'c') % 50000))",
            "category": "['pc', 'printer', 'network', 'phone'][1 + t % 4]",
            "priority": "['P1', 'P2', 'P3', 'P4'][1 + cityHash64(t, 'p') % 4]",
        },
        "survey": {
            "event_id": "concat('S', toString(number))", "ticket_id": "concat('T', toString(t))",
            "submitted_at": _at(f"{START_MS} + cityHash64(number, 's') % {YEAR_MS}"),
            "engineer_id": f"concat('E', leftPad(toString(cityHash64(number, 'e') % {ENGINEERS}"
                           "), 5, '0'))",
            "credited_by": "'resolution'", "csat": "1 + cityHash64(number, 'c') % 5",
            "nps": "cityHash64(number, 'n') % 11",
        },
    }[kind]
    columns = list(FACT_TABLES[kind].types)
    assert set(columns) == set(exprs), f"bench.query does not know all columns of {kind}"
    body = ", ".join(f"{exprs[c]} AS {c}" for c in columns)
    return (f"SELECT {body}, 1 AS version, 0 AS deleted "
            f"FROM (SELECT number, number % {tickets} AS t FROM numbers({count}))")


def _corrections() -> list[str]:
    """Statements correcting one resolution in CORRECTED: resolved_at moves back 1 to 40 days,
    as a newer version; a tombstone of the old identity where the identity holds the time."""
    spec = FACT_TABLES["resolution"]
    columns = ", ".join(spec.columns)
    moved = [f"resolved_at - toIntervalMillisecond(1 + cityHash64(ticket_id, episode) % "
             f"{40 * DAY_MS}) AS resolved_at" if c == "resolved_at" else c
             for c in spec.types]
    picked = (f"FROM resolutions WHERE version = 1 AND cityHash64(ticket_id, episode) % "
              f"{CORRECTED} = 0")
    out = []
    if "resolved_at" in spec.key:
        neutral = {c: ("''" if t == "str" else "0") for c, t in spec.types.items()}
        kept = [c if c in spec.key else f"{neutral[c]} AS {c}" for c in spec.types]
        out.append(f"INSERT INTO resolutions ({columns}) SELECT {', '.join(kept)}, 2, 1 "
                   f"{picked}")
    out.insert(0, f"INSERT INTO resolutions ({columns}) SELECT {', '.join(moved)}, 2, 0 "
                  f"{picked}")
    return out


def load(storage: Storage, facts: int) -> None:
    """Migrate and fill the database with ``facts`` synthetic facts, plus the roster."""
    storage.migrate()
    counts = {kind: int(facts * share) for kind, share in SHARES.items()}
    tickets = max(1, counts["ticket"])
    settings = "SETTINGS async_insert = 0, max_insert_threads = 2"
    for kind, count in counts.items():
        spec = FACT_TABLES[kind]
        storage.command(f"INSERT INTO {spec.table} ({', '.join(spec.columns)}) "
                        f"{_select(kind, count, tickets)} {settings}")
    for statement in _corrections():
        storage.command(f"{statement} {settings}")
    roster = FACT_TABLES["roster"]
    storage.insert(roster.table, [roster.row({
        "engineer_id": f"E{e:05d}", "name": f"E{e:05d}", "role": ROLES[e % len(ROLES)],
        "team_id": f"team-{e % TEAMS}", "active": True, "updated_at": START_MS, "v": 1,
        "del": 0}) for e in range(ENGINEERS)], roster.columns)


def stored(storage: Storage) -> dict:
    """Rows and parts per fact table as stored (before FINAL)."""
    rows = storage.rows(
        "SELECT table, sum(rows) AS rows, count() AS parts, uniqExact(partition) AS partitions "
        "FROM system.parts WHERE database = currentDatabase() AND active "
        "AND table IN ('tickets', 'resolutions', 'surveys') GROUP BY table ORDER BY table")
    return {r["table"]: {k: int(v) for k, v in r.items() if k != "table"} for r in rows}


def reads(storage: Storage, from_ms: int, to_ms: int) -> dict:
    """What the KPI query reads of each fact table, from its plan (EXPLAIN indexes = 1): the
    parts and granules selected out of those stored, per read of the table."""
    if hasattr(kpis, "rows_sql"):
        queries = [kpis.rows_sql("engineer_id", [])]
    else:  # before the KPIs were one query: one per family
        queries = [kpis._sql(family, "engineer_id", []) for family in kpis._AGGREGATES]
    plan = [r["explain"] for sql in queries for r in storage.rows(
        f"EXPLAIN indexes = 1 {sql}", {"from_ms": from_ms, "to_ms": to_ms})]
    out: dict[str, list[str]] = {}
    for n, line in enumerate(plan):
        found = re.search(r"ReadFromMergeTree \(\w+\.(\w+)\)", line)
        if not found or found[1] not in ("tickets", "resolutions", "surveys"):
            continue
        selected = totals = None
        for later in plan[n + 1:]:
            if "ReadFromMergeTree" in later or "ReadNothing" in later:
                break
            if selected is None and (m := re.search(r"Parts: (\d+) \| Granules: (\d+)", later)):
                selected = m.groups()
            if totals is None and (m := re.search(r"Parts: \d+/(\d+)", later)):
                totals = m[1]
            if totals and (m := re.search(r"Granules: \d+/(\d+)", later)):
                totals = (totals, m[1])
                break
        if selected and isinstance(totals, tuple):
            out.setdefault(found[1], []).append(f"parts {selected[0]}/{totals[0]}, "
                                                f"granules {selected[1]}/{totals[1]}")
    return out


def measure(facts: int = 10_000_000, folder: pathlib.Path | None = None) -> dict:
    """Load ``facts`` facts into a fresh database in ``folder`` (a temporary one by default)
    and time the 30-day KPIs of all engineers: best of three after one warm-up."""
    folder = pathlib.Path(folder or tempfile.mkdtemp(prefix="bench-query-"))
    storage = Storage(f"chdb://{folder}", "bench")
    began = time.perf_counter()
    load(storage, facts)
    loaded = time.perf_counter() - began
    to_ms = START_MS + YEAR_MS
    from_ms = to_ms - WINDOW_MS
    result = kpis.compute(storage, from_ms, to_ms)  # warm-up
    timings = []
    for _ in range(3):
        began = time.perf_counter()
        kpis.compute(storage, from_ms, to_ms)
        timings.append(time.perf_counter() - began)
    return {"facts": facts, "seconds": round(min(timings), 3),
            "timings": [round(t, 3) for t in timings], "engineers": len(result),
            "resolutions": sum(r["resolutions"] for r in result),
            "load_seconds": round(loaded, 1), "stored": stored(storage),
            "reads": reads(storage, from_ms, to_ms),
            "folder": str(folder)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=10_000_000)
    parser.add_argument("--folder", type=pathlib.Path, default=None,
                        help="a fresh folder for the data (default: a temporary one)")
    args = parser.parse_args()
    print(json.dumps(measure(args.facts, args.folder), indent=1))


if __name__ == "__main__":
    main()
