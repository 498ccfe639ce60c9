"""Crashes at many points of a step lose nothing (real Kafka, real chDB, worker processes).

The worker is stopped dead (``os._exit``, like SIGKILL: no flush, no commit) by fault injection
(servicescore/core/faults.py) at a count of passes (events, state writes or batches), between
each step of an agent's work: after routing, after the intake's send, after the ticket state is
written but before its facts are sent, after the facts are sent. Each restart picks up from the
committed offsets and the restored state, and is crashed again at the next point; at the end the
KPIs equal the oracle, and the facts are consistent on their own (no oracle needed:
servicescore/queries/invariants.py).
"""

from __future__ import annotations

import random
from datetime import date

import pytest

from schemas.period import parse_instant
from servicescore.core.faults import EXIT_CODE
from servicescore.dev.simulate import simulate, write_jsonl, write_roster_csv
from tests import oracle
from tests.test_pipeline import mismatches

TZ = "Asia/Shanghai"
# (point, after how many passes since the restart): every point, early and later in the stream.
# A pass is one event at intake:routed, one ticket's state write at lifecycle:state, and one
# batch at intake:sent and lifecycle:facts (the agents send per batch).
# The intake runs ahead of the lifecycle, so its points come first.
CRASHES = [("intake:routed", 150), ("intake:sent", 2), ("lifecycle:state", 25),
           ("lifecycle:facts", 3), ("lifecycle:state", 150), ("lifecycle:facts", 1),
           ("lifecycle:state", 1)]


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    sim = simulate(date(2026, 11, 2), 8, 10, seed=23, timezone=TZ)
    rng = random.Random(23)
    deliveries = list(sim.records) + [rng.choice(sim.records) for _ in range(60)]
    rng.shuffle(deliveries)
    folder = tmp_path_factory.mktemp("crash-traffic")
    write_jsonl(deliveries, folder / "events.jsonl")
    write_roster_csv(sim.roster, folder / "roster.csv")
    return folder, deliveries, {e.engineer_id: e.team_id for e in sim.roster}


def test_a_worker_crashed_at_every_point_of_a_step_loses_nothing(pipeline_factory, traffic):
    folder, deliveries, roster = traffic
    p = pipeline_factory("crash-points")
    p.cli("topics", "create")
    p.cli("roster", "import", str(folder / "roster.csv"))
    p.start("sink")
    p.cli("replay", str(folder / "events.jsonl"))
    for point, after in CRASHES:
        p.start("worker", {"SERVICESCORE_CRASH_AT": f"{point}:{after}"})
        assert p.wait_exit("worker") == EXIT_CODE, f"no crash at {point}:{after}"
    p.start("worker")
    p.wait_idle()
    p.stop_all()

    lo, hi = "2026-11-01", "2026-12-01"
    want = oracle.compute_kpis(deliveries, parse_instant(lo, TZ), parse_instant(hi, TZ),
                               roster=roster)
    problems = mismatches(want, p.json("kpis", "--from", lo, "--to", hi), "engineer_id")
    assert not problems, "; ".join(problems[:20])
    assert p.json("check") == {"inconsistent_tickets": 0, "examples": []}
