"""Operations metrics as an operator gets them: Debian's Prometheus scrapes the running service
(`worker` on SERVICESCORE_METRICS and `sink` on its API, or `run` on its API) after it has
processed real events through the real broker, and its HTTP API answers with counters equal to
what was sent: events per topic and outcome, dead letters per reason, facts emitted (counted
again on the facts topic), held events, every consumer group caught up, batches inserted and
timed, no insert failure."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from servicescore.app.service import bind_metrics
from servicescore.core.errors import ServicescoreError
from servicescore.core.metrics import PARTS, SINK, WORKER, Metrics
from servicescore.core.settings import load_settings
from servicescore.dev.broker import free_port
from servicescore.dev.simulate import simulate, write_jsonl
from servicescore.kafka.topics import consumer_groups
from tests import oracle

TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """A few days of simulated traffic ending yesterday, published in two files: every
    ticket-opened first, then the rest with duplicates, bad messages and two events of a
    ticket that is never opened. Openings first make the held events exactly those two
    (otherwise a resolution may overtake its opening on another topic and be held a while)."""
    today = datetime.now(ZoneInfo(TZ)).date()
    sim = simulate(today - timedelta(days=4), 3, 5, seed=7, timezone=TZ)
    rng = random.Random(7)
    opened = [r for r in sim.records if r[0] == "ticket-opened"]
    rest = [r for r in sim.records if r[0] != "ticket-opened"]
    resolved = next(e for t, e in rest if t == "ticket-resolved")
    first_response = next(e for t, e in rest if t == "ticket-first-response")
    orphans = [("ticket-resolved", {**resolved, "event_id": "orphan-1", "ticket_id": "T-never"}),
               ("ticket-first-response", {**first_response, "event_id": "orphan-2",
                                          "ticket_id": "T-never"})]
    bad = [("ticket-opened", '{"event_id": "cut-off"'), ("ticket-resolved", "not json"),
           ("survey-submitted", "[1, 2]"),
           ("survey-submitted", {**next(e for t, e in rest if t == "survey-submitted"),
                                 "event_id": "bad-csat", "csat": 9})]
    duplicates = rng.sample(sim.records, 12)
    later = rest + orphans + bad + duplicates
    rng.shuffle(later)
    folder = tmp_path_factory.mktemp("prometheus-traffic")
    write_jsonl(opened, folder / "opened.jsonl")
    write_jsonl(later, folder / "later.jsonl")
    return {"folder": folder, "deliveries": opened + later, "held": len(orphans),
            "letters": {("ticket-opened", "intake", "unreadable"): 1,
                        ("ticket-resolved", "intake", "unreadable"): 1,
                        ("survey-submitted", "intake", "unreadable"): 1,
                        ("survey-submitted", "intake", "invalid"): 1}}


def expected(traffic, facts: Counter, groups: dict[str, list[str]]) -> dict:
    """What Prometheus must answer, from the deliveries (judged by the test oracle) and the
    facts topic."""
    deliveries = traffic["deliveries"]
    outcomes = Counter((t, "ok" if oracle.is_valid(t, e) else "dead_letter") for t, e in deliveries)
    ticket_events = [oracle.parse_event(t, e) for t, e in deliveries if oracle.is_valid(t, e)
                     and t not in ("complaint-filed", "assessment-recorded")]
    return {
        "events": {(t, o): n for (t, o), n in outcomes.items()},
        "dead letters": traffic["letters"],
        "facts emitted": dict(facts),
        "held (steps)": traffic["held"],
        "held (stored)": traffic["held"],
        "lag": {(g, t): 0 for g, names in groups.items() for t in names},
        "insert failures": 0,
        "batches inserted and timed": True,
        # Every valid delivery reaches its facts (duplicates and held events included).
        "event-to-fact delays": sum(1 for t, e in deliveries if oracle.is_valid(t, e)),
        "newest event time": max(e.t for e in ticket_events
                                 if e.t <= time.time() * 1000 + 86_400_000) / 1000,
        # One size per state write: at least one per ticket, at most one per ticket event.
        "states written": Between(len({e.fields["ticket_id"] for e in ticket_events}),
                                  len(ticket_events)),
    }


class Between:
    """Equal to any number from ``lo`` to ``hi``."""

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi

    def __eq__(self, other) -> bool:
        return other is not None and self.lo <= other <= self.hi

    def __repr__(self) -> str:
        return f"Between({self.lo}, {self.hi})"


QUERIES = {
    "events": ("sum by (topic, outcome) (servicescore_events_total)", ("topic", "outcome")),
    "dead letters": ("sum by (topic, step, kind) (servicescore_dead_letters_total)",
                     ("topic", "step", "kind")),
    "facts emitted": ("sum by (kind) (servicescore_facts_emitted_total)", ("kind",)),
    "held (steps)": ("sum(servicescore_events_held_total)", None),
    # The gauge of the held rows in ClickHouse (refreshed every 30 s by the sink's process).
    "held (stored)": ("max(servicescore_held_events)", None),
    "lag": ("max by (group, topic) (servicescore_consumer_lag)", ("group", "topic")),
    "insert failures": ("sum(servicescore_sink_failures_total)", None),
    "event-to-fact delays": ("sum(servicescore_event_to_fact_seconds_count)", None),
    "newest event time": ("max(servicescore_newest_event_timestamp_seconds)", None),
    "states written": ("sum(servicescore_ticket_state_bytes_count)", None),
}


class Prometheus:
    """/usr/bin/prometheus scraping ``targets`` every second, its data in ``folder``."""

    def __init__(self, folder, targets: list[str]):
        binary = shutil.which("prometheus")
        assert binary, "Debian's prometheus is not installed: run `make ops-tools`"
        config = folder / "prometheus.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "servicescore",
                                "static_configs": [{"targets": targets}]}]}))
        self.address = f"127.0.0.1:{free_port()}"
        self.log = open(folder / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
             f"--web.listen-address={self.address}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=folder)

    def query(self, expression: str) -> list[dict]:
        url = (f"http://{self.address}/api/v1/query?"
               + urllib.parse.urlencode({"query": expression}))
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def answers(self) -> dict:
        got = {}
        for name, (expression, labels) in QUERIES.items():
            rows = self.query(expression)
            if labels is None:
                got[name] = float(rows[0]["value"][1]) if rows else None
            else:
                got[name] = {tuple(r["metric"].get(k, "") for k in labels)
                             if len(labels) > 1 else r["metric"].get(labels[0], ""):
                             float(r["value"][1]) for r in rows}
        batches = self.query("sum(servicescore_sink_batches_total)")
        timed = self.query("sum(servicescore_sink_insert_seconds_count)")
        got["batches inserted and timed"] = bool(batches) and bool(timed) and (
            float(batches[0]["value"][1]) > 0 and batches[0]["value"][1] == timed[0]["value"][1])
        return got

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, "prometheus exited: see prometheus.log"
            try:
                with urllib.request.urlopen(f"http://{self.address}/-/ready", timeout=2):
                    return
            except OSError:
                assert time.monotonic() < deadline, "prometheus did not get ready"
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


def facts_on_the_topic(bootstrap: str, topic: str, partitions: int) -> Counter:
    """Facts per kind in every message of the facts topic (a message holds one or many)."""

    async def read() -> Counter:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends, kinds = await consumer.end_offsets(parts), Counter()
            while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                for messages in (await consumer.getmany(timeout_ms=1000)).values():
                    for m in messages:
                        value = json.loads(m.value)
                        for fact in value.get("facts", [value]):
                            kinds[fact["kind"]] += 1
            return kinds
        finally:
            await consumer.stop()

    return asyncio.run(read())


@pytest.mark.parametrize("deployment", ["worker+sink", "run"])
def test_prometheus_scrapes_counters_equal_to_what_was_processed(deployment, pipeline_factory,
                                                                  traffic, tmp_path):
    p = pipeline_factory(deployment.replace("+", "-"))
    p.cli("topics", "create")
    api = p.env["SERVICESCORE_API"]
    if deployment == "run":
        p.start("run")
        targets = [api]
    else:
        worker_metrics = f"127.0.0.1:{free_port()}"
        p.start("worker", {"SERVICESCORE_METRICS": worker_metrics})
        p.start("sink")
        targets = [worker_metrics, api]
    prometheus = Prometheus(tmp_path, targets)
    try:
        prometheus.wait_ready()
        p.cli("replay", str(traffic["folder"] / "opened.jsonl"))
        p.wait_idle()
        p.cli("replay", str(traffic["folder"] / "later.jsonl"))
        p.wait_idle()
        want = expected(traffic, facts_on_the_topic(p.env["SERVICESCORE_KAFKA_BOOTSTRAP"],
                                                    p.settings.topic("facts"),
                                                    p.settings.partitions),
                        consumer_groups(p.cluster))
        # Scrapes come every second and the stored held rows are counted every 30 s: wait
        # for the answers to settle, then compare them whole.
        deadline = time.monotonic() + 180
        got = prometheus.answers()
        while got != want and time.monotonic() < deadline:
            time.sleep(2)
            got = prometheus.answers()
        assert {k: {"got": got[k], "want": v} for k, v in want.items() if got[k] != v} == {}
        assert sum(want["facts emitted"].values()) > 0 and want["events"]
    finally:
        prometheus.stop()
        p.stop_all()


# ------------------------------------------------------------------ the worker's endpoint


def test_each_command_serves_only_what_it_measures():
    def families(parts) -> set[str]:
        return {m.name for m in Metrics(parts=parts).registry.collect()}

    worker, sink, everything = families(WORKER), families(SINK), families(PARTS)
    assert {"servicescore_events", "servicescore_consumer_lag",
            "servicescore_newest_event_timestamp_seconds"} <= worker
    assert not worker & {"servicescore_held_events", "servicescore_sink_failures",
                         "servicescore_kpi_last_insert_timestamp_seconds"}
    assert {"servicescore_held_events", "servicescore_sink_failures",
            "servicescore_consumer_lag", "servicescore_dead_letters"} <= sink
    assert "servicescore_events_held" not in sink and worker | sink == everything


def test_a_metrics_address_given_must_be_free():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(ServicescoreError, match=f"cannot serve metrics on {address}"):
            bind_metrics(load_settings(metrics=address))


def test_the_default_metrics_address_taken_means_no_metrics_and_one_line(caplog, monkeypatch,
                                                                         tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("SERVICESCORE_METRICS", raising=False)
    settings = load_settings()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(settings.metrics_address)
            holder.listen()
        except OSError:
            pass  # another worker on this machine has it: taken all the same
        assert bind_metrics(settings) is None
    assert [r.getMessage() for r in caplog.records if "runs without /metrics" in r.getMessage()]


def test_no_metrics_address_no_endpoint():
    assert bind_metrics(load_settings(metrics="")) is None
