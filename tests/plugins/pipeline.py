"""The real pipeline as processes: `servicescore worker` and `servicescore sink` against the
session's Kafka, each with its own topics, consumer groups and embedded ClickHouse folder."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from schemas.events import intake_group
from servicescore.core.settings import load_settings
from servicescore.dev.broker import free_port
from servicescore.kafka.client import Cluster
from servicescore.kafka.topics import consumer_groups, lag, progress, sink_group

CLI = [sys.executable, "-m", "servicescore.cli"]
REPO = Path(__file__).resolve().parents[2]


class Pipeline:
    def __init__(self, bootstrap: str, folder: Path):
        uid = uuid.uuid4().hex[:8]
        self.folder = folder
        self.env = {
            **os.environ,
            "SERVICESCORE_KAFKA_BOOTSTRAP": bootstrap,
            "SERVICESCORE_TOPIC_PREFIX": f"t{uid}-",
            "SERVICESCORE_APP_ID": f"ss{uid}",
            "SERVICESCORE_DATA_DIR": str(folder),
            "SERVICESCORE_API": f"127.0.0.1:{free_port()}",
            "SERVICESCORE_PARTITIONS": "4",
        }
        self.settings = load_settings(**{k.removeprefix("SERVICESCORE_").lower(): v
                                         for k, v in self.env.items()
                                         if k.startswith("SERVICESCORE_")})
        self.cluster = Cluster.of(self.settings)
        self.processes: dict[str, subprocess.Popen] = {}

    def cli(self, *args: str, check: bool = True,
            env_extra: dict | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([*CLI, *args], env={**self.env, **(env_extra or {})}, cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        if check and done.returncode != 0:
            raise AssertionError(f"servicescore {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done

    def json(self, *args: str):
        return json.loads(self.cli(*args, "--format", "json").stdout)

    def start(self, part: str, env_extra: dict | None = None, name: str | None = None) -> None:
        """Run the command ``part``; ``name`` tells a second process of one command apart."""
        name = name or part
        log = open(self.folder / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen([*CLI, part], env={**self.env, **(env_extra or {})},
                                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def wait_exit(self, part: str, timeout: float = 300) -> int:
        """Until ``part`` ends by itself (an injected crash); its exit code."""
        process = self.processes.pop(part)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"{part} did not stop: {self.tail(part)}") from None

    def kill(self, part: str) -> None:
        """SIGKILL: no flush, no commit, no goodbye."""
        process = self.processes.pop(part)
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop(self, part: str) -> None:
        process = self.processes.pop(part, None)
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def stop_all(self) -> None:
        for part in list(self.processes):
            self.stop(part)

    def groups(self) -> dict[str, list[tuple[str, list[str]]]]:
        """part -> its consumer groups, each with the topics it consumes (the worker's first
        group is its intake's)."""
        groups = consumer_groups(self.cluster)
        app_id = self.settings.app_id
        parts = {"worker": [intake_group(app_id), app_id], "sink": [sink_group(app_id)]}
        return {part: [(g, groups[g]) for g in names] for part, names in parts.items()}

    def lag(self, part: str | None = None) -> int:
        wanted = [g for name, gs in self.groups().items() if part in (None, name) for g in gs]

        async def total():
            return sum([await lag(self.cluster, group, topics) for group, topics in wanted])
        return asyncio.run(total())

    def wait_committed(self, part: str, timeout: float = 300) -> None:
        """Until ``part``'s (first) consumer group has committed some of its input (however
        fast the pipeline, it then has made progress it must not lose or count twice)."""
        group, topics = self.groups()[part][0]
        deadline = time.monotonic() + timeout
        while asyncio.run(progress(self.cluster, group, topics))[0] == 0:
            process = self.processes.get(part)
            assert process is None or process.poll() is None, f"{part} exited: {self.tail(part)}"
            assert time.monotonic() < deadline, f"{part} made no progress: {self.tail(part)}"
            time.sleep(0.2)

    def wait_idle(self, timeout: float = 600, settle: int = 3) -> None:
        """Until every consumer group has committed everything, `settle` checks in a row."""
        deadline, quiet = time.monotonic() + timeout, 0
        while quiet < settle:
            for part, process in self.processes.items():
                assert process.poll() is None, f"{part} exited: {self.tail(part)}"
            assert time.monotonic() < deadline, f"pipeline still behind: lag {self.lag()}"
            quiet = quiet + 1 if self.lag() == 0 else 0
            time.sleep(1.0)

    def tail(self, part: str) -> str:
        path = self.folder / f"{part}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.fixture
def pipeline_factory(kafka_bootstrap, tmp_path):
    made: list[Pipeline] = []

    def make(name: str = "pipeline") -> Pipeline:
        folder = tmp_path / name
        folder.mkdir()
        pipeline = Pipeline(kafka_bootstrap, folder)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.stop_all()
