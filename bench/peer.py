"""The peer row: ClickHouse's own Kafka table engine and a materialized view ingesting the event
topics into a plain MergeTree table, as teams do without a stream processor.

chDB's Kafka engine fails here (LOGICAL_ERROR), so this is Debian's `clickhouse-server` (18.16,
which has the Kafka engine), started as a plain process in a temporary folder with its own config
on non-default ports (HTTP and native only, no interserver port). Rate = rows in the table /
seconds from the view's creation until every event is in (or until no row came for a while: the
rest are reported lost).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from schemas.events import EVENT_TOPICS
from servicescore.dev.broker import free_port

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{home}/log/server.log</log>
    <errorlog>{home}/log/error.log</errorlog><size>100M</size><count>1</count></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{home}/data/</path>
  <tmp_path>{home}/tmp/</tmp_path>
  <user_files_path>{home}/user_files/</user_files_path>
  <format_schema_path>{home}/format_schemas/</format_schema_path>
  <users_config>{home}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mlock_executable>false</mlock_executable>
  <kafka><auto_offset_reset>smallest</auto_offset_reset></kafka>
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><input_format_skip_unknown_fields>1</input_format_skip_unknown_fields>
  </default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"""

IDLE_S = 30  # no new row for this long: the rest are lost


def _port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


class ClickHouseServer:
    """clickhouse-server as a child process in ``home``; ``query`` over its HTTP port."""

    def __init__(self, home: Path):
        self.home = home
        self.http, self.tcp = _port(18123), _port(19000)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        binary = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
        if not Path(binary).exists():
            raise SystemExit("clickhouse-server is missing: `make bench` installs it (apt)")
        for sub in ("log", "data", "tmp", "user_files", "format_schemas"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (self.home / "config.xml").write_text(CONFIG.format(home=self.home, http=self.http,
                                                            tcp=self.tcp))
        (self.home / "users.xml").write_text(USERS)
        log = open(self.home / "log" / "stdout.log", "ab")
        self.process = subprocess.Popen([binary, f"--config-file={self.home}/config.xml"],
                                        cwd=self.home, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.query("SELECT 1")
                return
            except (OSError, urllib.error.URLError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"clickhouse-server did not start: {self.log_tail()}") \
                        from None
                time.sleep(0.2)

    def query(self, sql: str) -> str:
        url = f"http://127.0.0.1:{self.http}/?" + urllib.parse.urlencode({"query": sql})
        request = urllib.request.Request(url, data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read().decode()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"clickhouse-server: {exc.read().decode()[:500]}") from None

    def version(self) -> str:
        return self.query("SELECT version()").strip()

    def log_tail(self) -> str:
        texts = [p.read_text(errors="replace")[-1500:] for p in (self.home / "log").glob("*.log")]
        return "\n".join(texts)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def measure(bootstrap: str, topics: list[str], total: int, home: Path,
            timeout: float = 900) -> dict:
    """Row 2: the Kafka engine + materialized view ingesting ``topics`` (``total`` events)."""
    server = ClickHouseServer(home)
    server.start()
    try:
        server.query("CREATE TABLE events (event_id String, ticket_id String, "
                     "engineer_id String) "
                     "ENGINE = MergeTree ORDER BY (ticket_id, event_id)")
        server.query(f"CREATE TABLE queue (event_id String, ticket_id String, "
                     f"engineer_id String) ENGINE = Kafka SETTINGS "
                     f"kafka_broker_list = '{bootstrap}', "
                     f"kafka_topic_list = '{','.join(topics)}', "
                     f"kafka_group_name = 'bench-peer-{int(time.time())}', "
                     f"kafka_format = 'JSONEachRow', kafka_num_consumers = 1")
        began = time.monotonic()
        server.query("CREATE MATERIALIZED VIEW ingest TO events AS "
                     "SELECT event_id, ticket_id, engineer_id FROM queue")
        rows, last_change, last = 0, began, 0
        while rows < total and time.monotonic() - last_change < IDLE_S \
                and time.monotonic() - began < timeout:
            time.sleep(0.2)
            rows = int(server.query("SELECT count() FROM events"))
            if rows != last:
                last, last_change = rows, time.monotonic()
        seconds = (last_change if rows < total else time.monotonic()) - began
        distinct = int(server.query("SELECT uniqExact(event_id) FROM events"))
        return {"engine": f"clickhouse-server {server.version()} Kafka engine + MV -> MergeTree",
                "events": total, "rows": rows, "distinct": distinct,
                "lost": max(0, total - distinct), "seconds": seconds,
                "rate": rows / seconds if seconds else 0.0}
    finally:
        server.stop()


def event_topics(settings) -> list[str]:
    return [settings.topic(t) for t in EVENT_TOPICS]
