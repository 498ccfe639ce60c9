"""What the broker's logs say when a start fails: the first ERROR or FATAL entry of server.log,
else the JVM's last words on stdout."""

from __future__ import annotations

import re
from pathlib import Path

_LOG_ENTRY = re.compile(r"^\[[^\]]+\] (ERROR|FATAL) (.*?)(?: \([\w.$]+\))?$")


def read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def first_error(text: str) -> str | None:
    """The first ERROR/FATAL entry of a Kafka log, with the exception line that follows it."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = _LOG_ENTRY.match(line)
        if not match:
            continue
        message = match.group(2).strip()
        after = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if after and not after.startswith("[") and not after.startswith("at "):
            message = f"{message}: {after}"
        return message
    return None


def last_line(text: str) -> str | None:
    noise = ("Unable to register Log4j shutdown hook",)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not any(n in ln for n in noise)]
    return lines[-1] if lines else None
