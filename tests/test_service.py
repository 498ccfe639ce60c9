"""`servicescore run` (sink + HTTP API, the agents in a child process) holds the embedded data
folder; `kpis`, `tickets`, `live` and `dlq` still answer, through its HTTP API."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
import uuid
from datetime import date
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import intake_group
from schemas.period import parse_instant
from servicescore.app.service import ApiService, bind_api, watch_lag
from servicescore.core import logs
from servicescore.core.faults import EXIT_CODE
from servicescore.core.metrics import Metrics
from servicescore.core.settings import load_settings
from servicescore.dev.broker import free_port
from servicescore.dev.simulate import simulate, write_jsonl, write_roster_csv
from servicescore.kafka import topics
from servicescore.kafka.client import Cluster
from tests import oracle
from tests.plugins.kafka import delete_topics
from tests.test_pipeline import mismatches

TZ = "Asia/Shanghai"


def test_commands_read_through_the_running_service(pipeline_factory, tmp_path):
    sim = simulate(date(2026, 11, 2), 4, 6, seed=5, timezone=TZ)
    records = [*sim.records, ("survey-submitted", '{"event_id": "broken"')]
    write_jsonl(records, tmp_path / "events.jsonl")
    write_roster_csv(sim.roster, tmp_path / "roster.csv")
    p = pipeline_factory("service")
    p.env["SERVICESCORE_API_TOKEN"] = "s3cret"
    p.cli("topics", "create")
    p.cli("roster", "import", str(tmp_path / "roster.csv"))
    p.start("run")
    p.cli("replay", str(tmp_path / "events.jsonl"))
    p.wait_idle()

    lo, hi = "2026-11-02", "2026-11-09"
    want = oracle.compute_kpis(records, parse_instant(lo, TZ), parse_instant(hi, TZ))
    rows = p.json("kpis", "--from", lo, "--to", hi)
    assert not mismatches(want, rows, "engineer_id")

    engineer = max(want, key=lambda e: want[e]["resolutions"])
    tickets = p.json("tickets", "--from", lo, "--to", hi, "--engineer", engineer)
    assert len(tickets) == want[engineer]["resolutions"]
    assert {t["resolved_by"] for t in tickets} == {engineer}
    assert all(t["resolved_at"].endswith("+08:00") for t in tickets)

    letters = json.loads(p.cli("dlq", "list", "--format", "json").stdout)
    assert [(d["topic"], d["reason"][:12]) for d in letters] == [
        ("survey-submitted", "not valid UT")]

    wrong = p.cli("dlq", "replay", check=False,
                  env_extra={"SERVICESCORE_API_TOKEN": "guess"})
    assert wrong.returncode == 1 and "401" in wrong.stderr
    assert "republished 1 dead letter" in p.cli("dlq", "replay").stdout
    p.wait_idle()
    letters = json.loads(p.cli("dlq", "list", "--format", "json").stdout)
    # Refused again under its letter's identity: the letter is pending again (decisions.md)
    assert [d["replayed_at"] for d in letters] == [None]

    backlog = p.json("live")
    assert sum(b["open_tickets"] for b in backlog) > 0

    api = f"http://{p.env['SERVICESCORE_API']}"
    health = json.load(urllib.request.urlopen(f"{api}/health"))
    assert health["status"] == "ok"
    assert {name: c["status"] for name, c in health["checks"].items()} == {
        "kafka": "ok", "clickhouse": "ok", "sink": "ok"}
    metrics = urllib.request.urlopen(f"{api}/metrics").read().decode()
    assert ('servicescore_dead_letters_total{kind="unreadable",step="intake",'
            'topic="survey-submitted"} 2.0') in metrics
    sink_group = p.settings.app_id + "-sink"
    assert f'servicescore_consumer_lag{{group="{sink_group}",' in metrics

    # The period close, through the running service: the token decides, the rows are frozen.
    refused = p.cli("close", "--period", "2026-11", "--early", check=False,
                    env_extra={"SERVICESCORE_API_TOKEN": "guess"})
    assert refused.returncode == 1 and "401" in refused.stderr
    closed = p.cli("close", "--period", "2026-11", "--early").stdout
    assert closed.startswith("closed 2026-11: 6 engineer(s) frozen")
    again = p.cli("close", "--period", "2026-11", "--early", check=False)
    assert again.returncode == 1 and "already closed" in again.stderr
    frozen = p.json("appraisals", "--period", "2026-11")
    assert sorted(r["engineer_id"] for r in frozen) == sorted(e.engineer_id for e in sim.roster)
    assert {r["status"] for r in frozen} == {"frozen"}
    assert all(not a["changed"] for a in p.json("adjustments", "--period", "2026-11"))


@pytest.fixture
def own_topics(kafka_bootstrap, tmp_path):
    """Settings with topics and groups of this test's own (2 partitions), created and deleted."""
    tag = uuid.uuid4().hex[:10]
    settings = load_settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=f"t{tag}-",
                             app_id=f"app{tag}", partitions=2, data_dir=tmp_path,
                             api=f"127.0.0.1:{free_port()}")
    asyncio.run(topics.create_topics(Cluster.of(settings)))
    yield settings
    asyncio.run(delete_topics(kafka_bootstrap, list(topics.topic_plan(Cluster.of(settings)))))


def test_consumer_lag_per_group_and_partition(own_topics):
    s = own_topics
    opened, facts = s.topic("ticket-opened"), s.topic("facts")

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap)
        await producer.start()
        for topic, partition, count in ((opened, 1, 3), (facts, 0, 2)):
            for _ in range(count):
                await producer.send_and_wait(topic, b"{}", partition=partition)
        await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap,
                                    group_id=f"{s.app_id}-sink", enable_auto_commit=False)
        consumer.assign([TopicPartition(facts, 0)])
        await consumer.start()
        await consumer.commit({TopicPartition(facts, 0): 1})  # the sink took one of two
        await consumer.stop()
        metrics = Metrics()
        watching = asyncio.create_task(watch_lag(s, metrics, every_s=0.2))
        try:
            return await lag_once_measured(metrics, s)
        finally:
            watching.cancel()

    intake = intake_group(s.app_id)
    assert asyncio.run(go()) == {(intake, opened, "1"): 3, (intake, opened, "0"): 0,
                                 (f"{s.app_id}-sink", facts, "0"): 1,
                                 (f"{s.app_id}-sink", facts, "1"): 0}


async def lag_once_measured(metrics: Metrics, s, timeout_s: float = 60) -> dict:
    """The gauge's values for the two topics of the test, once the sink group's is there."""
    wanted = {(intake_group(s.app_id), s.topic("ticket-opened")),
              (f"{s.app_id}-sink", s.topic("facts"))}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        samples = {(m.labels["group"], m.labels["topic"], m.labels["partition"]): m.value
                   for family in metrics.registry.collect() for m in family.samples
                   if family.name == "servicescore_consumer_lag"}
        found = {k: v for k, v in samples.items() if k[:2] in wanted}
        if len(found) == 4:
            return found
        assert loop.time() < deadline, f"no lag measured: {samples}"
        await asyncio.sleep(0.1)


def test_the_service_logs_a_repeated_sink_line_once(own_topics, storage, caplog):
    sink_log = logging.getLogger("servicescore.sink")
    for f in [f for f in sink_log.filters if isinstance(f, logs.Repeats)]:
        sink_log.removeFilter(f)
    caplog.set_level(logging.WARNING, logger="servicescore.sink")

    async def go():
        service = ApiService(own_topics, storage, Metrics(), bind_api(own_topics),
                             SimpleNamespace())
        await service.start()
        try:
            for delay in range(200):
                sink_log.warning("ClickHouse unavailable, retrying in %.1fs: %s", delay, "down")
        finally:
            await service.stop()

    asyncio.run(go())
    assert [r.name for r in caplog.records if r.name == "servicescore.sink"] == [
        "servicescore.sink"]


# ------------------------------------------------------------------ run's worker process


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


def test_run_s_worker_is_a_process_of_its_own_that_ends_with_run_even_killed(pipeline_factory):
    p = pipeline_factory("run-child")
    p.cli("topics", "create")
    p.start("run")
    run = p.processes["run"]
    until(lambda: children(run.pid))
    (worker,) = children(run.pid)
    with open(f"/proc/{worker}/cmdline") as f:
        assert f.read().split("\0")[-2:] == ["worker", ""]

    p.kill("run")  # SIGKILL: run says no goodbye, the kernel tells the worker

    until(lambda: not alive(worker))
    assert not alive(worker), "the worker outlived run"


def test_a_worker_that_ends_ends_run_with_its_exit_code(pipeline_factory, tmp_path):
    sim = simulate(date(2026, 11, 2), 1, 2, seed=5, timezone=TZ)
    write_jsonl(sim.records[:5], tmp_path / "events.jsonl")
    p = pipeline_factory("run-crash")
    p.cli("topics", "create")
    p.start("run", {"SERVICESCORE_CRASH_AT": "intake:routed:1"})  # the worker's fault point
    p.cli("replay", str(tmp_path / "events.jsonl"))

    assert p.wait_exit("run") == EXIT_CODE
