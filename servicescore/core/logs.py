"""Logging that stays readable when something fails all the time.

A broker outage fails every API request and the sink retries every few seconds: the same line
thousands of times hides everything else. ``Repeats`` lets the first of a kind through, then at
most one per interval, carrying the count of those it held back. ``OneLine`` turns a library's
traceback for a caller's mistake into one line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

INTERVAL_S = 60.0
_MAX_KINDS = 1000  # distinct kinds remembered; a flood of distinct lines must not grow memory


class Repeats(logging.Filter):
    """One record per kind and interval. A kind is the logger, level and message template, so
    ``retrying in %.1fs`` with a growing delay is one kind."""

    def __init__(self, interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()  # records also come from worker threads (to_thread)
        self._seen: dict[tuple, list] = {}  # kind -> [time let through, held back since]

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            seen = self._seen.get(kind)
            if seen is not None and now - seen[0] < self.interval_s:
                seen[1] += 1
                return False
            held = seen[1] if seen else 0
            self._forget_old(now)
            self._seen[kind] = [now, 0]
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last " \
                         f"{self.interval_s:.0f}s not shown)"
        return True

    def _forget_old(self, now: float) -> None:
        if len(self._seen) >= _MAX_KINDS:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval_s}
        if len(self._seen) >= _MAX_KINDS:  # all recent: a flood of distinct lines
            self._seen.clear()


class OneLine(logging.Filter):
    """A record with a traceback becomes one line naming the exception; ``mistakes`` (exception
    types that are the caller's doing, e.g. a malformed HTTP request) become warnings."""

    def __init__(self, mistakes: tuple[type[BaseException], ...] = ()):
        super().__init__()
        self.mistakes = mistakes

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        text = str(getattr(exc, "message", "") or exc).strip()
        first = text.splitlines()[0][:200] if text else ""
        # The template keeps the exception's type, not its text: Repeats groups by template.
        message = record.getMessage().replace("%", "%%")
        record.msg, record.args = f"{message}: {type(exc).__name__}: %r", (first,)
        record.exc_info, record.exc_text = None, None
        if isinstance(exc, self.mistakes):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def limit_repeats(*names: str, interval_s: float = INTERVAL_S) -> None:
    """Attach one ``Repeats`` to each named logger (once: calling again changes nothing)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, Repeats) for f in logger.filters):
            logger.addFilter(Repeats(interval_s))


@contextmanager
def silenced(*names: str) -> Iterator[None]:
    """The named loggers quiet for a step whose failure the caller reports itself (a service's
    start-up check of Kafka: one line, not the client's connection errors before it)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
