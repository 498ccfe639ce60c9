"""Where `servicescore worker` spends its time: py-spy on the worker alone, summarised.

    .venv/bin/python -m bench.profile --days 180 --engineers 60 --seconds 40

Publishes simulated traffic to a local Kafka, starts `servicescore worker` (no sink, no API)
and, once it is consuming, samples it with py-spy (CPU samples, Python frames) for a while.
Each sample is counted twice:

- by the code it was in (its innermost Python frame): ours (streams/, schemas/, servicescore/),
  Faust's tables, the rest of Faust and its service framework mode, aiokafka, the asyncio loop,
  the rest (a C extension's time counts for the Python frame that called it);
- by the part it served (any frame in the stack): the lifecycle agent, the intake loop.

"Our business logic" is every sample whose stack holds one of the pure steps (routing, a
ticket's lifecycle, its facts, its state's encoding): the share that making our own code faster
can win back. The rest is the runtime's per-message work. Writes the summary to
bench/results/profile.json and the collapsed stacks (for a flame graph) next to it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from servicescore.dev.simulate import simulate, write_jsonl, write_roster_csv
from tests.plugins.kafka import local_kafka
from tests.plugins.pipeline import Pipeline

RESULTS = Path(__file__).parent / "results"
# Innermost frame's file -> where the time went; the first match wins.
PLACES = [  # py-spy names a frame's file from its package: "faust/agents/agent.py"
    ("ours: pure steps", re.compile(r"\((streams/(?!app\.py)|schemas/)")),
    ("ours: worker wiring (streams/app.py)", re.compile(r"\(streams/app\.py")),
    ("ours: servicescore/", re.compile(r"\(servicescore/")),
    ("faust tables (RocksDB)", re.compile(r"\(faust/(stores|tables)/")),
    ("faust", re.compile(r"\(faust/")),
    ("mode (Faust's services)", re.compile(r"\(mode/")),
    ("aiokafka", re.compile(r"\(aiokafka/")),
    ("asyncio loop", re.compile(r"\(asyncio/|\(selectors\.py")),
]
PURE = re.compile(r"\((streams/(intake|lifecycle|episode|resolution|facts|ticket|retirement)"
                  r"\.py|schemas/[a-z_]+\.py):")
OTHER = "stdlib and other libraries"
AGENTS = {"lifecycle agent (Faust)": "lifecycle_agent (", "intake (aiokafka loop)": "Intake.run ("}
# The runtime's costs that scale with the messages rather than with the business logic.
RUNTIME = {
    "ticket-state table reads and writes (Faust; a changelog record per write)":
        re.compile(r"ManagedUserDict\."),
    "producers sending (Faust's buffer, aiokafka's sender)":
        re.compile(r"ProducerBuffer\.|Sender\."),
    "the asyncio loop itself (innermost)": re.compile(r"\((asyncio/|selectors\.py)[^;]*$"),
}


def summarise(collapsed: str) -> dict:
    """Shares of the samples by innermost place and by agent, from py-spy's raw output."""
    places, agents, runtime, total, pure = Counter(), Counter(), Counter(), 0, 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        leaf = stack.rsplit(";", 1)[-1]
        place = next((name for name, pattern in PLACES if pattern.search(leaf)), OTHER)
        places[place] += n
        for agent, marker in AGENTS.items():
            if marker in stack:
                agents[agent] += n
        pure += n if PURE.search(stack) else 0
        for name, pattern in RUNTIME.items():
            if pattern.search(stack):
                runtime[name] += n
    share = (lambda n: round(n / total, 3)) if total else (lambda n: 0.0)
    return {"samples": total, "our business logic (inclusive)": share(pure),
            "by innermost frame": {k: share(v) for k, v in places.most_common()},
            "by agent (inclusive)": {k: share(v) for k, v in agents.most_common()},
            "runtime (inclusive)": {k: share(v) for k, v in runtime.most_common()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--engineers", type=int, default=60)
    parser.add_argument("--seconds", type=int, default=40, help="how long to sample")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: `make bench` installs it (.[bench])")
    with tempfile.TemporaryDirectory(prefix="ssprofile-") as tmp:
        folder = Path(tmp)
        broker = local_kafka(folder / "kafka")
        bootstrap = broker.start()
        try:
            summary = run(bootstrap, folder, args, spy)
        finally:
            broker.stop()
    print(json.dumps(summary, indent=2, ensure_ascii=False))


def run(bootstrap: str, folder: Path, args, spy: str) -> dict:
    sim = simulate(date(2026, 6, 1), args.days, args.engineers, seed=1)
    write_jsonl(sim.records, folder / "events.jsonl")
    write_roster_csv(sim.roster, folder / "roster.csv")
    (folder / "p").mkdir()
    p = Pipeline(bootstrap, folder / "p")
    p.cli("topics", "create")
    p.cli("replay", str(folder / "events.jsonl"))
    p.start("worker", {"SERVICESCORE_METRICS": ""})
    try:
        worker = p.processes["worker"]
        p.wait_committed("worker")  # start-up and recovery are not what this profiles
        raw = folder / "worker.collapsed"
        subprocess.run([spy, "record", "--pid", str(worker.pid), "--duration",
                        str(args.seconds), "--rate", "100", "--format", "raw", "--nonblocking",
                        "--output", str(raw)], check=True, capture_output=True, timeout=600)
        behind = p.lag("worker")
    finally:
        p.stop_all()
    summary = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
               "events": len(sim.records), "sampled_s": args.seconds,
               "lag_after_sampling": behind, **summarise(raw.read_text())}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    shutil.copy(raw, RESULTS / "profile.collapsed")
    return summary


if __name__ == "__main__":
    main()
