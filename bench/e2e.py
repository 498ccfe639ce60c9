"""servicescore's own rows: `servicescore run` end to end with its hops, two workers in one group,
and the worker's memory with many open tickets.

Progress comes from sampling each consumer group's committed offsets once a second: the intake
(the worker's intake group on the event topics), the lifecycle (the worker group on its internal
ticket-events topic) and the sink (the sink group on facts, dead letters and roster).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from schemas.events import (
    DLQ_TOPIC,
    EVENT_TOPICS,
    ROSTER_TOPIC,
    intake_group,
    ticket_events_topic,
)
from schemas.facts import FACTS_TOPIC
from servicescore.kafka.topics import offset_clients, partition_progress, sink_group
from tests.plugins.pipeline import Pipeline

SETTLE = 2  # samples in a row with everything committed


@dataclass
class Sample:
    t: float  # seconds since the processes started
    done: dict[str, int]  # hop -> offsets committed
    end: dict[str, int]  # hop -> end offsets
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds so far


@dataclass
class Progress:
    samples: list[Sample] = field(default_factory=list)

    def finished(self, hop: str, after: float = 0.0) -> float | None:
        """When ``hop`` had committed everything, at or after ``after``."""
        for s in self.samples:
            if s.t >= after and s.done[hop] >= s.end[hop] > 0:
                return s.t
        return None

    def first_progress(self) -> float | None:
        return next((s.t for s in self.samples if any(s.done.values())), None)

    def reached(self, hop: str, share: float, total: int) -> float | None:
        """When ``hop`` had committed ``share`` of ``total``, interpolated between samples."""
        previous = None
        for s in self.samples:
            if s.done[hop] >= share * total:
                if previous is None or s.done[hop] == previous.done[hop]:
                    return s.t
                frac = (share * total - previous.done[hop]) / (s.done[hop] - previous.done[hop])
                return previous.t + frac * (s.t - previous.t)
            previous = s
        return None


def hops(p: Pipeline) -> dict[str, tuple[str, list[str]]]:
    """hop -> (consumer group, its topics)."""
    s = p.settings
    return {"intake": (intake_group(s.app_id), [s.topic(t) for t in EVENT_TOPICS]),
            "lifecycle": (s.app_id, [ticket_events_topic(s.app_id)]),
            "sink": (sink_group(s.app_id),
                     [s.topic(t) for t in (FACTS_TOPIC, DLQ_TOPIC, ROSTER_TOPIC)])}


async def watch(p: Pipeline, total: int, began: float, wanted=("intake", "lifecycle", "sink"),
                timeout: float = 3600, interval: float = 1.0,
                pids: dict[str, int] | None = None) -> Progress:
    """Sample the hops until each has committed everything (the intake all ``total`` events)
    for SETTLE samples in a row; the processes must stay alive."""
    groups = {h: g for h, g in hops(p).items() if h in wanted}
    progress, quiet = Progress(), 0
    async with offset_clients(p.cluster) as clients:
        while quiet < SETTLE:
            for name, process in p.processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"{name} exited: {p.tail(name)}")
            if time.monotonic() - began > timeout:
                raise SystemExit(f"still behind after {timeout} s: {progress.samples[-1:]}")
            done, end = {}, {}
            for hop, (group, topics) in groups.items():
                parts = await partition_progress(*clients, group, topics)
                done[hop] = sum(d for d, _ in parts.values())
                end[hop] = sum(e for _, e in parts.values())
            cpu = cpu_by_process(pids or {})
            progress.samples.append(Sample(time.monotonic() - began, done, end, cpu))
            caught_up = all(done[h] >= end[h] for h in groups) and done["intake"] >= total
            quiet = quiet + 1 if caught_up else 0
            await asyncio.sleep(interval)
    return progress


def summary(progress: Progress, total: int, hop_names=("intake", "lifecycle", "sink")) -> dict:
    """Wall time, steady rates and when each hop was done (seconds since start)."""
    done_at, after = {}, 0.0
    for hop in hop_names:
        done_at[hop] = after = progress.finished(hop, after) or after
    last = done_at[hop_names[-1]]
    first = progress.first_progress() or 0.0
    t10, t90 = (progress.reached("intake", share, total) for share in (0.1, 0.9))
    return {
        "events": total, "wall_s": last, "rate_wall": total / last,
        "first_commit_s": first, "steady_s": last - first,
        "rate_steady": total / (last - first) if last > first else None,
        "rate_intake_10_90": 0.8 * total / (t90 - t10) if t10 and t90 and t90 > t10 else None,
        "done_s": done_at,
        "samples": [(round(s.t, 2), s.done) for s in progress.samples],
    }


def run_until_idle(p: Pipeline, total: int, starts: list[tuple[str, str, dict]],
                   wanted=("intake", "lifecycle", "sink"),
                   pids: dict[str, int] | None = None) -> tuple[Progress, float]:
    """Start (name, command, env) processes and watch until all is committed; the CPU time of
    those processes and of ``pids`` (name -> pid) is sampled with the offsets."""
    began = time.monotonic()
    for name, command, env in starts:
        p.start(command, env, name=name)
    pids = {**{name: p.processes[name].pid for name, _, _ in starts}, **(pids or {})}
    return asyncio.run(watch(p, total, began, wanted, pids=pids)), began


def end_to_end(p: Pipeline, total: int, broker_pid: int | None = None,
               starts: tuple = (("run", "run", {}),)) -> dict:
    """Row 3: `servicescore run` from start until every group has committed everything. The
    process is left running (the freshness row uses it). Also the CPU time each process and the
    broker spent meanwhile, per event: unlike the rates, it hardly depends on what else the
    machine is doing, and with the cores it bounds the rate any schedule could reach."""
    progress, _ = run_until_idle(p, total, list(starts),
                                 pids={"broker": broker_pid} if broker_pid else None)
    out = summary(progress, total)
    # From the first commit until done (start-up excluded, as the steady rate): the CPU spent
    # over the events the intake committed meanwhile.
    first = next(s for s in progress.samples if any(s.done.values()))
    last = next(s for s in progress.samples if s.t >= out["wall_s"])
    events = total - first.done["intake"]
    out["cpu_us_per_event"] = {name: 1e6 * (last.cpu[name] - first.cpu.get(name, 0)) / events
                               for name in last.cpu}
    cpu = out["cpu_us_per_event"]
    # Every process busy on all cores all the time: the most this machine could do.
    out["rate_cpu_bound"] = os.cpu_count() * 1e6 / sum(cpu.values())
    # A Python process computes on one core at a time (the GIL): the busiest one's bound.
    out["rate_busiest_bound"] = 1e6 / max(us for name, us in cpu.items() if name != "broker")
    return out


def split(p: Pipeline, total: int, broker_pid: int | None = None) -> dict:
    """Row 3b: the same as row 3 with the worker and the sink (with the API) as two processes,
    `servicescore worker` and `servicescore sink`, as a deployment that scales out runs them."""
    try:
        worker = ("worker", "worker", {"SERVICESCORE_METRICS": ""})  # no port of its own
        return end_to_end(p, total, broker_pid, (worker, ("sink", "sink", {})))
    finally:
        p.stop_all()


def two_workers(p: Pipeline, total: int) -> dict:
    """Row 8: two `servicescore worker` processes in one group (each its own data folder) and
    two sinks in one group (SERVICESCORE_SINK_CONSUMERS=2: the embedded engine is one process
    per folder)."""
    starts = []
    for n in (1, 2):
        folder = p.folder / f"worker{n}"
        folder.mkdir(exist_ok=True)
        starts.append((f"worker{n}", "worker", {"SERVICESCORE_DATA_DIR": str(folder),
                                                "SERVICESCORE_METRICS": ""}))
    starts.append(("sink", "sink", {"SERVICESCORE_SINK_CONSUMERS": "2"}))
    try:
        progress, _ = run_until_idle(p, total, starts)
    finally:
        p.stop_all()
    return summary(progress, total)


def memory(p: Pipeline, total: int) -> dict:
    """Row 7: `servicescore worker` alone on ``total`` ticket-opened events of distinct tickets,
    until caught up; its RSS high-water mark (VmHWM) and its RSS then."""
    try:
        progress, _ = run_until_idle(p, total, [("worker", "worker", {})],
                                     wanted=("intake", "lifecycle"))
        status = status_of(p.processes["worker"].pid)
    finally:
        p.stop_all()
    out = summary(progress, total, ("intake", "lifecycle"))
    out.pop("samples")
    return {"open_tickets": total, "vm_hwm_mb": status["VmHWM"] / 1024,
            "vm_rss_mb": status["VmRSS"] / 1024, "worker_s": out["wall_s"],
            "rate_wall": out["rate_wall"]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_process(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each named process and of each of its children (`run`'s worker), as
    "name" and "name's child"."""
    out = {}
    for name, pid in pids.items():
        out[name] = cpu_seconds(pid)
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(child) for child in f.read().split()]
        except FileNotFoundError:
            children = []
        for child in children:
            out[f"{name}'s child"] = cpu_seconds(child)
    return out


def status_of(pid: int) -> dict[str, int]:
    """/proc/PID/status memory lines in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                out[name] = int(value.split()[0])
    return out
