"""One broker's configuration: server.properties from the template next to the pom, the JVM's
command line, a new cluster id and the initial heap."""

from __future__ import annotations

import base64
import re
import string
import uuid
from pathlib import Path

from servicescore.core.errors import BrokerError

JVM_FLAGS = (
    "-XX:+UseSerialGC",  # one small heap, few GC threads
    "-XX:TieredStopAtLevel=1",  # C1 only: faster start-up, plenty for a test broker
    "-Djava.awt.headless=true",
)
_ADVERTISED_PORT = re.compile(r"^advertised\.listeners=PLAINTEXT://[^:]+:(\d+)", re.M)


def server_properties(pom: Path, port: int, controller_port: int, data_dir: Path) -> str:
    template = pom.parent / "server.properties.template"
    return string.Template(template.read_text(encoding="utf-8")).substitute(
        port=port, controller_port=controller_port, data_dir=data_dir)


def advertised_port(properties: str) -> int | None:
    """The port a written server.properties has the broker listen on."""
    found = _ADVERTISED_PORT.search(properties)
    return int(found.group(1)) if found else None


def jvm_base(java: str, pom: Path, logs_dir: Path, lib_dir: Path) -> list[str]:
    log4j = pom.parent / "log4j2.xml"
    return [java, *JVM_FLAGS, f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={logs_dir}", "-cp", str(lib_dir / "*")]


def cluster_id() -> str:
    """A new cluster id as ``StorageTool random-uuid`` makes it (base64url UUID, no padding),
    without starting a JVM for it."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def initial_heap(heap: str) -> str:
    """-Xms: 256m, or the whole heap when that is smaller."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    match = re.fullmatch(r"(\d+)([kmgKMG]?)", heap.strip())
    if not match:
        raise BrokerError(f"invalid Kafka heap size {heap!r} (use e.g. 512m or 1g)")
    size = int(match.group(1)) * units.get(match.group(2).lower(), 1)
    return heap if size < 256 << 20 else "256m"
