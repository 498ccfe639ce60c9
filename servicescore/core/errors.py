"""One place for the kinds of error a user can cause or meet (their base, ``ServicescoreError``,
sits with the contracts in schemas/errors.py)."""

from schemas.errors import ServicescoreError

__all__ = ["BrokerError", "ConfigError", "ServicescoreError", "StorageError", "StorageLocked"]


class ConfigError(ServicescoreError):
    """A configuration value is missing or invalid."""


class BrokerError(ServicescoreError):
    """The local Kafka broker could not be fetched, started or reached."""


class StorageError(ServicescoreError):
    """ClickHouse could not be reached or refused a statement."""


class StorageLocked(StorageError):
    """The embedded engine's data folder is held by another process (``servicescore run``)."""
