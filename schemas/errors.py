"""The base of every error a user can cause or meet, at the bottom of the layers so that a
contract (a period, a window) can refuse input in the user's terms.

A ``ServicescoreError`` is printed by the CLI as one line (``servicescore: <message>``) and
exits non-zero, without a traceback; the HTTP API answers it with a 4xx. Anything else is a bug
and keeps its traceback. The kinds of it live in servicescore/core/errors.py.
"""


class ServicescoreError(Exception):
    """A problem the user can fix: bad configuration, bad input, an unreachable service."""
