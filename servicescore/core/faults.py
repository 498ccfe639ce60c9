"""Fault injection for the crash tests: stop the process dead at a named point of a step.

``SERVICESCORE_CRASH_AT=lifecycle:state:37`` ends the worker with ``os._exit`` (no flush, no
commit, like SIGKILL) the 37th time the lifecycle agent has written a state and not yet sent its
facts. Points: ``intake:routed``, ``intake:sent``, ``lifecycle:state``, ``lifecycle:facts`` (the
worker's steps), ``close:samples``, ``close:appraisals`` (the period close, after each write
before its commit marker). Unset (production), ``reach`` is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

POINTS = ("intake:routed", "intake:sent", "lifecycle:state", "lifecycle:facts",
          "close:samples", "close:appraisals")
EXIT_CODE = 137


@dataclass
class Faults:
    point: str | None = None
    after: int = 0
    seen: int = 0

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        if not spec:
            return cls()
        point, _, count = spec.rpartition(":")
        if point not in POINTS or not count.isdecimal() or int(count) < 1:
            raise ValueError(f"crash point must be one of {', '.join(POINTS)} then :N, "
                             f"got {spec!r}")
        return cls(point, int(count))

    def reach(self, point: str) -> None:
        if point != self.point:
            return
        self.seen += 1
        if self.seen >= self.after:
            os._exit(EXIT_CODE)
