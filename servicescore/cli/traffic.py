"""The commands that put events on the topics: ``replay`` of a JSON Lines file, and
``simulate`` of synthetic after-sales traffic (to Kafka, or to a file to replay later)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from servicescore.cli.arguments import bounded, day
from servicescore.core.errors import ServicescoreError
from servicescore.core.settings import Settings
from servicescore.kafka.client import Cluster


def register(sub) -> None:
    replay = sub.add_parser("replay", help='publish JSON Lines {"topic": ..., "event": {...}}')
    replay.add_argument("files", nargs="+", type=Path)
    replay.set_defaults(handler=cmd_replay)

    sim = sub.add_parser("simulate", help="realistic synthetic after-sales traffic")
    sim.add_argument("--start", required=True, type=day, help="first day, e.g. 2026-11-01")
    sim.add_argument("--days", required=True, type=bounded(1, 3660), help="1..3660")
    sim.add_argument("--engineers", required=True, type=bounded(1, 10_000), help="1..10000")
    sim.add_argument("--seed", type=int, default=1)
    target = sim.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="JSON Lines file (roster CSV beside it)")
    target.add_argument("--to-kafka", action="store_true", help="publish to the topics")
    sim.set_defaults(handler=cmd_simulate)


def cmd_replay(settings: Settings, args) -> int:
    from servicescore.kafka import publish, topics

    records, problems = publish.read_jsonl(args.files)
    for problem in problems:
        print(f"servicescore: {problem}", file=sys.stderr)
    # Nothing readable: the problems above say it all, without a Kafka error on top.
    sent = topics.run(publish.publish(Cluster.of(settings), records)) if records else 0
    print(f"published {sent} event(s)" + (f", skipped {len(problems)} bad line(s)"
                                          if problems else ""))
    return 1 if problems else 0


def cmd_simulate(settings: Settings, args) -> int:
    from servicescore.dev import simulate

    started = time.monotonic()
    if args.out and not args.out.parent.is_dir():
        raise ServicescoreError(f"--out: no folder {args.out.parent} to write {args.out.name} in")
    traffic = simulate.simulate(args.start, args.days, args.engineers, args.seed,
                                settings.timezone)
    if args.out:
        count, roster_file = _write_files(traffic, args.out)
        print(f"wrote {count} events to {args.out} and {len(traffic.roster)} engineers to "
              f"{roster_file} in {time.monotonic() - started:.1f}s")
    else:
        sent = _publish(settings, traffic)
        print(f"published {sent} events and {len(traffic.roster)} engineers to Kafka at "
              f"{settings.kafka_bootstrap}")
    return 0


def _write_files(traffic, out: Path) -> tuple[int, Path]:
    """The events as JSON Lines and the roster CSV beside them; (events written, roster file)."""
    from servicescore.dev import simulate

    roster_file = out.with_suffix(".roster.csv")
    try:
        count = simulate.write_jsonl(traffic.records, out)
        simulate.write_roster_csv(traffic.roster, roster_file)
    except OSError as exc:
        raise ServicescoreError(f"--out: cannot write {exc.filename or out}: "
                                f"{exc.strerror or exc}") from None
    return count, roster_file


def _publish(settings: Settings, traffic) -> int:
    """Create the topics, publish the roster, then the events; the number of events sent."""
    from servicescore.app import roster
    from servicescore.kafka import publish, topics

    topics.run(topics.create_topics(Cluster.of(settings)))
    topics.run(roster.publish(settings, [roster.from_engineer(e) for e in traffic.roster]))
    return topics.run(publish.publish(Cluster.of(settings), traffic.records))
