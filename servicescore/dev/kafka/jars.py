"""The broker's class path: the jars Maven fetches with the pom next to this file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from servicescore.core.errors import BrokerError

KAFKA_JAR_GLOB = "kafka_2.13-*.jar"
MAVEN_TIMEOUT_S = 1800
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def ensure_jars(lib_dir: Path, pom: Path) -> None:
    """Fetch the broker's class path into ``lib_dir`` with Maven unless it is there already."""
    if _has_kafka_jar(lib_dir):
        return
    mvn = require_tool("mvn", "Maven is needed to fetch the Kafka broker")
    require_tool("java", "Java 17+ is needed to run the Kafka broker")
    if not pom.is_file():
        raise BrokerError(f"cannot fetch the Kafka broker: {pom} does not exist")
    lib_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lib_dir.parent, prefix=".kafka-fetch-") as tmp:
        _run_maven(mvn, pom, Path(tmp))
        _move_jars(Path(tmp), lib_dir)


def require_tool(name: str, why: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BrokerError(f"{why}, but `{name}` is not on PATH")
    return found


def _has_kafka_jar(lib_dir: Path) -> bool:
    return lib_dir.is_dir() and any(lib_dir.glob(KAFKA_JAR_GLOB))


def _run_maven(mvn: str, pom: Path, out_dir: Path) -> None:
    cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
           "dependency:copy-dependencies", "-DincludeScope=runtime",
           f"-DoutputDirectory={out_dir}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BrokerError(
            f"fetching the Kafka broker with Maven timed out after {MAVEN_TIMEOUT_S} s") from None
    if done.returncode != 0 or not any(out_dir.glob(KAFKA_JAR_GLOB)):
        reason = _maven_reason(done.stdout + "\n" + done.stderr)
        raise BrokerError(f"fetching the Kafka broker with Maven failed: {reason}")


def _maven_reason(output: str) -> str:
    lines = [_ANSI.sub("", ln).strip() for ln in output.splitlines()]
    lines = [ln for ln in lines if ln]
    errors = [ln.removeprefix("[ERROR]").strip() for ln in lines if ln.startswith("[ERROR]")]
    errors = [ln for ln in errors if ln]
    if errors:
        return errors[0].removesuffix("-> [Help 1]").strip()
    return lines[-1] if lines else "no output (is the pom valid?)"


def _move_jars(src: Path, lib_dir: Path) -> None:
    """Move the fetched jars in, the kafka jar last: its presence marks a complete class path."""
    lib_dir.mkdir(parents=True, exist_ok=True)
    jars = sorted(src.glob("*.jar"), key=lambda p: p.match(KAFKA_JAR_GLOB))
    for jar in jars:
        os.replace(jar, lib_dir / jar.name)
