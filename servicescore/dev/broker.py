"""A local single-node Kafka broker (KRaft, broker and controller in one JVM) for development
and tests, run from the jars Maven fetches with ``servicescore/dev/kafka/pom.xml`` (package
data, like the template and log4j2 config next to it).

Everything of one broker lives in its *home* folder::

    home/server.properties   written from the pom's server.properties.template on each start
    home/data/               log.dirs (and the KRaft metadata log), formatted once
    home/logs/server.log     the broker's log (log4j2.xml next to the pom)
    home/logs/stdout.log     the JVM's stdout and stderr (JVM start-up errors land here)
    home/kafka.pid           the pid (and process group) of the running broker

No settings are read from the environment: the caller passes every value in. This module is the
process control (start, stop, status, waiting, explaining a failed start); servicescore.dev.kafka
holds the broker's files and fetches its jars (``jars``), fills in its configuration (``config``),
reads its logs (``logs``) and probes ports and processes (``probes``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from servicescore.core.errors import BrokerError
from servicescore.dev.kafka import POM
from servicescore.dev.kafka.config import (
    advertised_port,
    cluster_id,
    initial_heap,
    jvm_base,
    server_properties,
)
from servicescore.dev.kafka.jars import ensure_jars, require_tool
from servicescore.dev.kafka.logs import first_error, last_line, read_from
from servicescore.dev.kafka.probes import (
    HOST,
    answers_metadata,
    broker_alive,
    free_port,
    port_open,
    port_taken,
)

FORMAT_TIMEOUT_S = 120


class LocalKafka:
    """One local broker whose config, data, logs and pid file live in ``home``."""

    def __init__(self, home: Path, lib_dir: Path, pom: Path = POM, port: int = 9092,
                 controller_port: int | None = None, heap: str = "512m") -> None:
        self.home = Path(home).resolve()
        self.lib_dir = Path(lib_dir).resolve()
        self.pom = Path(pom).resolve()
        self.port = port
        self.controller_port = controller_port or _other_free_port(port)
        if self.controller_port == port:
            raise BrokerError(f"the Kafka broker and controller ports must differ (both {port})")
        self.heap = heap
        self._initial_heap = initial_heap(heap)  # validates the heap size early
        self.bootstrap = f"{HOST}:{port}"
        self._proc: subprocess.Popen | None = None
        self._log_offsets = (0, 0)  # where this start's part of the logs begins

    # -- paths
    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def stdout_file(self) -> Path:
        return self.logs_dir / "stdout.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    # -- public API
    def start(self, timeout: float = 90) -> str:
        """Start the broker (or find it running) and return its bootstrap address."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock():
            self._log_offsets = (self._size(self.log_file), self._size(self.stdout_file))
            pid = self._running_pid()
            spawned = pid is None
            if spawned:
                pid = self._launch()
            else:
                self._check_same_port()
            self._wait_ready(pid, time.monotonic() + timeout, stop_on_timeout=spawned)
        return self.bootstrap

    def stop(self, timeout: float = 30) -> bool:
        """Stop the broker: SIGTERM its process group, then SIGKILL. Whether it was running."""
        pid = self._running_pid()
        if pid is not None:
            _kill_group(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                _kill_group(pid, signal.SIGKILL)
                self._wait_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        self._proc = None
        return pid is not None

    def status(self) -> dict:
        """``running`` means the process is alive and its port accepts connections."""
        pid = self._running_pid()
        return {"running": pid is not None and port_open(self.port), "pid": pid,
                "bootstrap": self.bootstrap, "log": str(self.log_file), "home": str(self.home)}

    # -- starting
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise starts of the same home across processes."""
        with (self.home / ".start.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _check_same_port(self) -> None:
        """A broker of this home already runs: it must be the one on our port."""
        running_on = advertised_port(self._config_text())
        if running_on is not None and running_on != self.port:
            raise BrokerError(f"the Kafka broker in {self.home} already runs on port "
                              f"{running_on}, not {self.port}; stop it first")

    def _config_text(self) -> str:
        try:
            return self.config_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def _launch(self) -> int:
        self._check_ports_free()
        ensure_jars(self.lib_dir, self.pom)
        java = require_tool("java", "Java 17+ is needed to run the Kafka broker")
        self._write_config()
        self._format_storage(java)
        return self._spawn(java)

    def _check_ports_free(self) -> None:
        for name, port in (("broker", self.port), ("controller", self.controller_port)):
            if port_taken(port):
                raise BrokerError(f"cannot start Kafka: {name} port {HOST}:{port} is already "
                                  "in use (another broker running? choose another port)")

    def _write_config(self) -> None:
        text = server_properties(self.pom, self.port, self.controller_port, self.data_dir)
        self.config_file.write_text(text, encoding="utf-8")

    def _jvm_base(self, java: str) -> list[str]:
        return jvm_base(java, self.pom, self.logs_dir, self.lib_dir)

    def _format_storage(self, java: str) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        cmd = [*self._jvm_base(java), "-Xmx256m", "kafka.tools.StorageTool", "format",
               "-t", cluster_id(), "-c", str(self.config_file)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BrokerError(f"formatting Kafka storage in {self.data_dir} timed out") from None
        if done.returncode != 0:
            reason = last_line(done.stdout + "\n" + done.stderr) or f"exit code {done.returncode}"
            raise BrokerError(f"formatting Kafka storage in {self.data_dir} failed: {reason}")

    def _spawn(self, java: str) -> int:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        cmd = [*self._jvm_base(java), f"-Xmx{self.heap}", f"-Xms{self._initial_heap}",
               "kafka.Kafka", str(self.config_file)]
        with self.stdout_file.open("ab") as out:
            self._proc = subprocess.Popen(cmd, cwd=self.home, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{self._proc.pid}\n")
        return self._proc.pid

    @staticmethod
    def _size(path: Path) -> int:
        return path.stat().st_size if path.exists() else 0

    # -- waiting
    def _wait_ready(self, pid: int, deadline: float, stop_on_timeout: bool) -> None:
        while True:
            self._check_alive(pid)
            if port_open(self.port) and self._answers_metadata(deadline):
                return
            if time.monotonic() >= deadline:
                if stop_on_timeout:
                    self.stop(timeout=10)
                raise BrokerError(f"Kafka did not become ready on {self.bootstrap} within "
                                  f"the timeout; see {self._failure()}")
            time.sleep(0.1)

    def _answers_metadata(self, deadline: float) -> bool:
        wait_s = min(2.0, max(deadline - time.monotonic(), 0.5))
        return answers_metadata(self.bootstrap, wait_s)

    def _check_alive(self, pid: int) -> None:
        if self._proc is not None and self._proc.pid == pid:
            code = self._proc.poll()
            alive = code is None
        else:
            code, alive = None, broker_alive(pid)
        if not alive:
            self.pid_file.unlink(missing_ok=True)
            self._proc = None
            how = f" with exit code {code}" if code is not None else ""
            raise BrokerError(f"Kafka exited during start-up{how}; see {self._failure()}")

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    return True
            elif not broker_alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if self._proc is not None and self._proc.pid == pid:
            return pid if self._proc.poll() is None else None
        return pid if broker_alive(pid) else None

    # -- explaining failures
    def _failure(self) -> str:
        """``<log file>: <its most telling line>`` for what this start wrote to the logs."""
        log_off, out_off = self._log_offsets
        log_text = read_from(self.log_file, log_off)
        out_text = read_from(self.stdout_file, out_off)
        if error := first_error(log_text):
            return f"{self.log_file}: {error}"
        if line := last_line(out_text):  # the JVM itself failed (heap, class path, ...)
            return f"{self.stdout_file}: {line}"
        return f"{self.log_file}: {last_line(log_text) or 'nothing logged'}"


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _other_free_port(port: int) -> int:
    while (candidate := free_port()) == port:
        pass
    return candidate
