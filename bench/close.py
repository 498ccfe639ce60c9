"""How long a period close takes for a large department: `python -m bench.close`.

Synthetic facts for N engineers (tickets with a first response, a resolution and a survey,
plus complaints and assessments) go straight into a fresh embedded ClickHouse, then the month
is closed with the shipped scheme. Prints the whole close's wall time and its rows.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

from appraisal.close import close_period
from appraisal.scheme import default_scheme
from schemas.facts import FACT_TABLES
from schemas.period import parse_instant, parse_period
from schemas.roster import ROLES
from servicescore.storage.clickhouse import Storage

TZ = "Asia/Shanghai"
HOUR = 3_600_000


def facts(engineers: int, tickets_each: int, seed: int = 7) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    start = parse_period("2026-11", TZ).start_ms
    out: dict[str, list[dict]] = {k: [] for k in ("ticket", "resolution", "survey",
                                                   "complaint", "assessment", "roster")}
    for e in range(engineers):
        engineer = f"E{e:05d}"
        out["roster"].append({"engineer_id": engineer, "name": engineer, "active": True,
                              "role": ROLES[e % len(ROLES)], "team_id": f"team-{e % 40}",
                              "updated_at": start})
        for n in range(tickets_each):
            tid, opened = f"T{e:05d}-{n:04d}", start + rng.randrange(29 * 24) * HOUR
            frt, aht = rng.uniform(60, 7200), rng.uniform(600, 200_000)
            out["ticket"].append({
                "ticket_id": tid, "customer_id": f"C{rng.randrange(5000)}", "category": "pc",
                "priority": rng.choice(("P1", "P2", "P3", "P4")), "channel": "phone",
                "requires_onsite": False, "opened_at": opened, "status": "resolved",
                "episodes": 1, "episode_start": opened, "escalations": 0, "surveys": 1,
                "first_response_at": opened + int(frt * 1000), "first_responder_id": engineer,
                "frt_s": frt, "frt_bh_s": frt})
            out["resolution"].append({
                "ticket_id": tid, "episode": 1, "engineer_id": engineer,
                "resolved_at": opened + int(aht * 1000), "episode_start": opened, "aht_s": aht,
                "aht_bh_s": aht / 3, "escalated": False, "fcr": rng.random() < 0.8,
                "reopened_7d": rng.random() < 0.05, "reopened_30d": False,
                "customer_id": "C", "category": "pc", "priority": "P2"})
            out["survey"].append({
                "event_id": f"S-{tid}", "ticket_id": tid, "engineer_id": engineer,
                "submitted_at": opened + int(aht * 1000) + HOUR, "credited_by": "resolution",
                "csat": rng.randint(3, 5), "nps": rng.randint(5, 10)})
        out["complaint"].append({"event_id": f"X-{engineer}", "engineer_id": engineer,
                                 "filed_at": start + HOUR, "severity": "minor"})
        for dim in ("compliance", "collaboration", "training", "knowledge", "review360"):
            out["assessment"].append({
                "event_id": f"A-{engineer}-{dim}", "engineer_id": engineer, "dimension": dim,
                "score": rng.uniform(60, 100), "assessor_role": "supervisor",
                "period": "2026-11", "effective_at": start})
    return out


def measure(engineers: int = 1000, tickets: int = 60) -> dict:
    """The close of 2026-11 for ``engineers`` with ``tickets`` each, in a fresh chDB folder."""
    with tempfile.TemporaryDirectory(prefix="ssclose-") as folder:
        storage = Storage(f"chdb://{folder}", "bench")
        storage.migrate()
        made = facts(engineers, tickets)
        for kind, rows in made.items():
            spec = FACT_TABLES[kind]
            storage.insert(spec.table, [spec.row({**f, "v": 1, "del": 0}) for f in rows],
                           spec.columns)
        began = time.perf_counter()
        done = close_period(storage, "2026-11", default_scheme(),
                            parse_instant("2026-12-09", TZ))
        seconds = time.perf_counter() - began
        samples = storage.rows("SELECT count() AS n FROM close_samples")[0]["n"]
        storage.close()
    return {"engineers": done.engineers, "tickets_each": tickets, "samples": samples,
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engineers", type=int, default=1000)
    parser.add_argument("--tickets", type=int, default=60, help="tickets per engineer")
    args = parser.parse_args()
    out = measure(args.engineers, args.tickets)
    print(f"close of 2026-11: {out['engineers']} engineers, {out['samples']} samples frozen, "
          f"{out['seconds']:.2f} s")


if __name__ == "__main__":
    main()
