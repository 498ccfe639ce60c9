"""One place for the errors a user can cause or meet.

A ``ServicescoreError`` is printed by the CLI as one line (``servicescore: <message>``) and
exits non-zero, without a traceback. Anything else is a bug and keeps its traceback.
"""


class ServicescoreError(Exception):
    """A problem the user can fix: bad configuration, bad input, an unreachable service."""


class ConfigError(ServicescoreError):
    """A configuration value is missing or invalid."""


class BrokerError(ServicescoreError):
    """The local Kafka broker could not be fetched, started or reached."""


class StorageError(ServicescoreError):
    """ClickHouse could not be reached or refused a statement."""


class StorageLocked(StorageError):
    """The embedded engine's data folder is held by another process (``servicescore run``)."""
