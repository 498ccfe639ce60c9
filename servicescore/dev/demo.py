"""The one-command tour (``servicescore demo``): a local Kafka unless one is configured, the
pipeline (``servicescore run``) on the embedded ClickHouse, a simulated month published to it,
the month closed once every event is stored, the appraisal sheets written.

Everything lives in one folder of the demo's own, with topic and consumer-group names of the
run's own, so it never mixes with a user's data, even on a user's broker:

    folder/.servicescore-demo   what the last run started (names, pids): the next run cleans up
    folder/kafka/               the demo's own broker (its data is new each run, its logs stay)
    folder/clickhouse/          the embedded ClickHouse (new each run)
    folder/report/index.html    the appraisal sheets and the team page
    folder/logs/service.log     the output of ``servicescore run``

This module does the work and reports through return values and callbacks; the command
(servicescore/cli/demo.py) shows it. ``stop`` ends whatever was started, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from schemas.period import parse_period
from servicescore.app.startup import Progress, Watcher, serves
from servicescore.core.errors import ServicescoreError
from servicescore.core.settings import Settings
from servicescore.dev.broker import LocalKafka
from servicescore.dev.kafka.jars import KAFKA_JAR_GLOB
from servicescore.dev.kafka.probes import free_port
from servicescore.kafka import topics
from servicescore.kafka.client import Cluster

MARKER = ".servicescore-demo"
LOCK = ".demo.lock"
NAME = "servicescore-demo"  # every topic and consumer group of a demo starts with it
SERVE_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
POLL_S = 1.0
KPIS_EVERY_S = 3.0
SETTLED = 2
# Settings of the user's that do not apply to the demo's own broker (a local PLAINTEXT one).
KAFKA_SECURITY = ("kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username",
                  "kafka_sasl_password", "kafka_ssl_cafile")


@dataclass(frozen=True)
class Plan:
    folder: Path
    month: str  # the simulated and closed month, YYYY-MM
    days: int  # of it, from its first day
    engineers: int
    seed: int = 1
    lang: str = "zh"


def previous_month(timezone: str, now: datetime | None = None) -> str:
    """The last whole month in the business timezone: the newest one a demo can close."""
    now = now or datetime.now(ZoneInfo(timezone))
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def month_days(month: str, timezone: str) -> tuple[date, int]:
    """The month's first day and its number of days."""
    period = parse_period(month, timezone)
    zone = ZoneInfo(timezone)
    first = datetime.fromtimestamp(period.start_ms / 1000, zone).date()
    last = datetime.fromtimestamp((period.end_ms - 1) / 1000, zone).date()
    return first, (last - first).days + 1


class Demo:
    """One run of the demo. Call ``prepare`` first and ``stop`` in a ``finally``."""

    def __init__(self, settings: Settings, plan: Plan, python: str = sys.executable):
        self.user = settings
        self.plan = plan
        self.python = python
        self.folder = plan.folder.expanduser().absolute()
        self.own_broker = "kafka_bootstrap" not in settings.model_fields_set
        self.broker: LocalKafka | None = None
        self.service: subprocess.Popen | None = None
        self.run_id = time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)
        self.token = secrets.token_urlsafe(24)
        self.api = f"127.0.0.1:{free_port()}"
        self.settings: Settings | None = None  # the demo's service's, once Kafka is known
        self.events = 0
        self._lock = None

    # -- paths
    @property
    def report_index(self) -> Path:
        return self.folder / "report" / "index.html"

    @property
    def service_log(self) -> Path:
        return self.folder / "logs" / "service.log"

    @property
    def needs_fetch(self) -> bool:
        """Whether starting the own broker fetches its jars first (Maven: the first run)."""
        lib = self.user.kafka_lib
        return self.own_broker and not (lib.is_dir() and any(lib.glob(KAFKA_JAR_GLOB)))

    # -- the folder
    def prepare(self) -> None:
        """Take the folder (one demo at a time in it), end what an earlier run left running,
        and clear its data; a folder holding anything else is refused, never cleared."""
        marker = self.folder / MARKER
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            others = [p.name for p in self.folder.iterdir() if p.name not in (MARKER, LOCK)]
            if others and not marker.exists():  # checked first: nothing of ours is left there
                raise ServicescoreError(f"--data-dir: {self.folder} holds other files "
                                        f"({', '.join(sorted(others)[:3])}); the demo clears "
                                        "its folder, so give it an empty or new one")
            self._lock = (self.folder / LOCK).open("w")
        except OSError as exc:
            raise ServicescoreError(f"--data-dir: cannot use {self.folder}: "
                                    f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise ServicescoreError(f"another demo is running in {self.folder}") from None
        self._end_last_run(marker)
        for path in self.folder.iterdir():
            if path.name in (MARKER, LOCK, "kafka"):
                continue
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        shutil.rmtree(self.folder / "kafka" / "data", ignore_errors=True)
        (self.folder / "logs").mkdir()
        self._remember()

    def _end_last_run(self, marker: Path) -> None:
        """A run that was killed (not interrupted) may have left its service or broker running,
        and on a configured broker its topics."""
        try:
            last = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        pid = last.get("service_pid")
        if isinstance(pid, int) and _is_ours(pid):
            _end(pid)
        if (self.folder / "kafka" / "kafka.pid").exists():
            self._local_broker(port=1).stop()  # the pid file says which; the port is unused
        if (not last.get("own_broker") and not self.own_broker
                and last.get("kafka") == self.user.kafka_bootstrap and last.get("run_id")):
            with contextlib.suppress(Exception):
                asyncio.run(_delete_demo_topics(Cluster.of(self.user), last["run_id"]))

    def _remember(self) -> None:
        (self.folder / MARKER).write_text(json.dumps({
            "run_id": self.run_id, "own_broker": self.own_broker,
            "kafka": None if self.own_broker else self.user.kafka_bootstrap,
            "service_pid": self.service.pid if self.service else None}), encoding="utf-8")

    # -- Kafka
    def start_kafka(self) -> str:
        """The demo's own broker (no SERVICESCORE_KAFKA_BOOTSTRAP given), or the configured
        one, reachable; then the demo's topics. Returns the bootstrap address."""
        if self.own_broker:
            self.broker = self._local_broker(free_port())
            bootstrap = self.broker.start(timeout=120)
        else:
            bootstrap = self.user.kafka_bootstrap
        self.settings = self._service_settings(bootstrap)
        cluster = Cluster.of(self.settings)
        try:
            asyncio.run(topics.check_reachable(cluster, 15))
        except Exception:  # noqa: BLE001 - any failure means the same to the user
            raise topics.unreachable(cluster) from None
        topics.run(topics.create_topics(cluster))
        return bootstrap

    def _local_broker(self, port: int) -> LocalKafka:
        return LocalKafka(self.folder / "kafka", self.user.kafka_lib, port=port,
                          heap=self.user.kafka_heap)

    def _service_settings(self, bootstrap: str) -> Settings:
        """The user's settings (business time, scheme, a configured broker's security) with
        the demo's folder, names, API and token, on the embedded ClickHouse."""
        update = {"data_dir": self.folder, "clickhouse_dsn": None, "kafka_home": None,
                  # The app id must not start with the prefix and "-": the workers' internal
                  # topics are told from the product's by that (kafka/topics.py).
                  "topic_prefix": f"{NAME}-{self.run_id}-",
                  "app_id": f"{NAME}-{self.run_id}-app",
                  "api": self.api, "api_token": SecretStr(self.token), "crash_at": None,
                  "kafka_bootstrap": bootstrap,
                  "scheme": self.user.scheme.absolute() if self.user.scheme else None}
        if self.own_broker:
            update.update({name: Settings.model_fields[name].default for name in KAFKA_SECURITY})
        return self.user.model_copy(update=update)

    # -- the service
    def start_service(self) -> None:
        """``servicescore run`` as a process of its own session (the demo stops it in order:
        a terminal's Ctrl-C reaches the demo alone), logging to ``service_log``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
        env.update(settings_env(self.settings))
        with self.service_log.open("ab") as log:
            self.service = subprocess.Popen(
                [self.python, "-m", "servicescore.cli", "run"], cwd=self.folder, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent)
        self._remember()

    def wait_serving(self, timeout_s: float = SERVE_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not serves(self.api):
            self._check_service()
            if time.monotonic() > deadline:
                raise ServicescoreError(f"the pipeline did not start within {timeout_s:.0f}s; "
                                        f"see {self.service_log}")
            time.sleep(0.3)

    def _check_service(self) -> None:
        if self.service is not None and self.service.poll() is not None:
            raise ServicescoreError(f"the pipeline stopped (exit code {self.service.returncode})"
                                    f": {_last_line(self.service_log)} (see {self.service_log})")

    # -- traffic
    def publish(self, on_sent: Callable[[int, int], None]) -> int:
        """Simulate the month and publish the roster and the events; ``on_sent(done, total)``
        as they go. Returns the number of events."""
        from servicescore.app import roster
        from servicescore.dev import simulate
        from servicescore.kafka import publish

        first, length = month_days(self.plan.month, self.settings.timezone)
        traffic = simulate.simulate(first, min(self.plan.days, length), self.plan.engineers,
                                    self.plan.seed, self.settings.timezone)
        self.events = len(traffic.records)
        on_sent(0, self.events)
        topics.run(roster.publish(self.settings, [roster.from_engineer(e)
                                                  for e in traffic.roster]))
        topics.run(publish.publish(Cluster.of(self.settings),
                                   _counted(traffic.records, on_sent, self.events)))
        on_sent(self.events, self.events)
        return self.events

    def follow(self, on_progress: Callable[[Progress], None],
               on_kpis: Callable[[list[dict]], None]) -> Progress:
        """Until every published event is processed and every fact stored: ``on_progress``
        each second, ``on_kpis`` (the month's KPIs per team so far) every few seconds."""
        return asyncio.run(self._follow(on_progress, on_kpis))

    async def _follow(self, on_progress, on_kpis) -> Progress:
        period = parse_period(self.plan.month, self.settings.timezone)
        reader = self.reader()
        settled, last_kpis = 0, 0.0
        async with Watcher(Cluster.of(self.settings)) as watcher:
            while True:
                self._check_service()
                found = await watcher.progress()
                on_progress(found)
                done = found.caught_up and found.events_done >= self.events
                settled = settled + 1 if done else 0
                if time.monotonic() - last_kpis >= KPIS_EVERY_S or settled >= SETTLED:
                    last_kpis = time.monotonic()
                    with contextlib.suppress(ServicescoreError):  # a busy API: next time
                        on_kpis(await asyncio.to_thread(
                            reader.kpis, period.start_ms, period.end_ms, None, None, "team"))
                if settled >= SETTLED:
                    return found
                await asyncio.sleep(POLL_S)

    # -- the month
    def reader(self):
        from servicescore.app.reader import HttpReader

        return HttpReader(self.api, self.token)

    def close(self) -> dict:
        """Close the month now (early: the demo does not wait for the grace days). If the
        service closed it by itself meanwhile (its automatic close of the last month), the
        demo closes it again, superseding that one, now that every event is stored."""
        reader = self.reader()
        try:
            return reader.close(self.plan.month, True)
        except ServicescoreError as exc:
            if "already closed" not in str(exc):
                raise
        return reader.close(self.plan.month, True, "the demo closes after every event is stored")

    def appraisals(self) -> list[dict]:
        return self.reader().appraisals(self.plan.month)

    def write_report(self) -> Path:
        from appraisal.report import write_report

        data = self.reader().report_data(self.plan.month)
        write_report(data, self.report_index.parent, self.plan.lang)
        return self.report_index

    # -- the end
    def stop(self) -> list[str]:
        """Stop the service, then the demo's own broker (or delete the demo's topics on a
        configured one). Safe to call at any point, twice too. Returns what it stopped."""
        stopped = []
        if self.service is not None and self.service.poll() is None:
            _end(self.service.pid, self.service)
            stopped.append("pipeline")
        self.service = None
        if self.broker is not None:
            if self.broker.stop():
                stopped.append("Kafka")
            self.broker = None
        elif self.settings is not None:
            with contextlib.suppress(Exception):  # a best effort: the next run tries again
                asyncio.run(asyncio.wait_for(
                    _delete_demo_topics(Cluster.of(self.settings), self.run_id), 20))
            self.settings = None
        if self._lock is not None:
            self._remember()
            self._lock.close()
            self._lock = None
        return stopped


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as the SERVICESCORE_ variable that gives it (secrets in clear: for a
    child process's environment only). None is left out: the default is None."""
    env = {}
    shown = settings.model_dump(mode="json")
    for name, value in shown.items():
        raw = getattr(settings, name)
        if raw is None:
            continue
        if isinstance(raw, SecretStr):
            value = raw.get_secret_value()
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"SERVICESCORE_{name.upper()}"] = str(value)
    return env


async def _delete_demo_topics(cluster: Cluster, run_id: str) -> None:
    """The topics of one demo run (its prefix and its app id's internal topics)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**cluster.options())
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(f"{NAME}-{run_id}-")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def _counted(records: Iterable, on_sent: Callable[[int, int], None], total: int,
             every: int = 500) -> Iterator:
    for n, record in enumerate(records, start=1):
        if n % every == 0:
            on_sent(n, total)
        yield record


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the demo dies, even by SIGKILL, so a
    killed demo leaves no pipeline holding its folder."""
    with contextlib.suppress(Exception):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _is_ours(pid: int) -> bool:
    """A live process running ``servicescore.cli run`` (a pid may have been reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"servicescore.cli" in cmdline and b"run" in cmdline


def _end(pid: int, process: subprocess.Popen | None = None) -> None:
    """SIGTERM (the service flushes and commits), then SIGKILL after STOP_TIMEOUT_S."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait(10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "nothing logged"
