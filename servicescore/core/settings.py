"""The one settings object: environment variables prefixed SERVICESCORE_ (or a .env file).

Read once at the entry point (``load_settings``) and passed down as plain values; library code
never reads ``os.environ``. Secrets are ``SecretStr`` and print masked.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from schemas.calendar import DAY_NAMES, WorkCalendar, default_hours
from servicescore.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # ours are used unquoted in DDL
_HOURS = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\],/]*):([0-9]{1,5})$", re.ASCII)
# Structured values are decoded by our validators, not by pydantic-settings: its JSON decoding
# fails with a traceback that names no variable, and people write dates as a plain list.
Numbers = Annotated[dict[str, float], NoDecode]
Dates = Annotated[list[date], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SERVICESCORE_", env_file=".env", extra="ignore", frozen=True
    )

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    topic_prefix: str = ""
    partitions: int = Field(6, ge=1, le=1000)
    app_id: str = "servicescore"

    # Storage: the embedded engine (chdb:///folder) by default, or http(s)://user:pw@host:8123/db.
    # The database a DSN names (its path, or ?database=) is the one used; clickhouse_database
    # only names it for the embedded engine (whose DSN path is a folder) or a DSN naming none.
    clickhouse_dsn: SecretStr | None = None
    clickhouse_database: str = "servicescore"
    # Not the current directory: every command finds the same data wherever it is started.
    data_dir: Path = Field(default_factory=lambda: default_data_dir())

    # Local broker for development (servicescore kafka start)
    kafka_home: Path | None = None
    kafka_lib: Path = ROOT / ".cache" / "kafka" / "lib"
    kafka_heap: str = "512m"

    # Service
    api: str = "127.0.0.1:8080"
    api_token: SecretStr | None = None
    # Where `servicescore worker` serves /metrics (it has no API; run and sink serve /metrics
    # on SERVICESCORE_API). Empty: not served. When left at the default and the port is taken
    # (a second worker on the host), the worker runs without it and says so in one line.
    metrics: str = "127.0.0.1:9464"
    scheme: Path | None = None

    # Business time
    timezone: str = "Asia/Shanghai"
    work_hours: Annotated[dict[str, list[str]], NoDecode] = Field(default_factory=default_hours)
    holidays: Dates = Field(default_factory=list)
    workdays: Dates = Field(default_factory=list)
    sla_clock: Literal["calendar", "business"] = "calendar"
    frt_targets_s: Numbers = Field(
        default_factory=lambda: {"P1": 900, "P2": 3600, "P3": 14400, "P4": 86400}
    )
    # Resolution targets (kpis.md 1.1 aht_sla_rate, and the live view's overdue tickets)
    aht_targets_s: Numbers = Field(
        default_factory=lambda: {"P1": 8 * 3600, "P2": 24 * 3600, "P3": 72 * 3600,
                                 "P4": 168 * 3600}
    )
    onsite_targets_s: Numbers = Field(
        default_factory=lambda: {"P1": 4 * 3600, "P2": 8 * 3600, "P3": 24 * 3600, "P4": 72 * 3600}
    )
    review_weights: Numbers = Field(
        default_factory=lambda: {
            "supervisor": 0.4, "peer": 0.3, "customer": 0.2, "subordinate": 0.1, "self": 0.0
        }
    )

    # Exactness holds for events at most this late; a ticket's state retires after its last
    # event by 30 days plus this (spec README, "Allowed lateness"). 60d, 36h, 90m or 30s.
    allowed_lateness: str = "60d"

    # Sink
    sink_batch_rows: int = Field(1000, ge=1)
    sink_batch_seconds: float = Field(1.0, gt=0)
    # Sinks of one consumer group in this process. The embedded engine is one process per data
    # folder, so sinks sharing it share the process; against a ClickHouse server, start
    # `servicescore sink` several times instead.
    sink_consumers: int = Field(1, ge=1, le=16)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    # Crash tests only: stop the worker dead at a point of a step (servicescore/core/faults.py).
    crash_at: str | None = None

    @field_validator("allowed_lateness")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_ms(value)
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_folder(cls, value: Path) -> Path:
        """``~`` expanded and made absolute once, so what `servicescore config` shows is the
        folder every part of the program uses."""
        return value.expanduser().absolute()

    @field_validator("work_hours", "frt_targets_s", "aht_targets_s", "onsite_targets_s",
                     "review_weights", mode="before")
    @classmethod
    def _json_object(cls, value):
        if isinstance(value, str):
            value = _json(value, "JSON object")
        return value

    @field_validator("holidays", "workdays", mode="before")
    @classmethod
    def _date_list(cls, value):
        """A JSON list or the plain form people write: ``2026-10-01,2026-10-02``."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return _json(value, "JSON list or comma-separated dates")
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("clickhouse_database")
    @classmethod
    def _database_name(cls, value: str) -> str:
        if not _DATABASE.match(value):
            raise ValueError(f"{value!r} is not a database name (letters, digits, _)")
        return value

    @field_validator("clickhouse_dsn")
    @classmethod
    def _dsn_database_name(cls, value: SecretStr | None) -> SecretStr | None:
        named = dsn_database(value.get_secret_value()) if value is not None else None
        if named is not None and not _DATABASE.match(named):
            raise ValueError(f"the DSN names database {named!r}, not a database name "
                             "(letters, digits, _)")
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        for address in value.split(","):
            host_port(address.strip())
        return value

    @field_validator("api")
    @classmethod
    def _api_address(cls, value: str) -> str:
        host_port(value)
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics_address(cls, value: str) -> str:
        if value.strip():
            host_port(value)
        return value.strip()

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        """Credentials that would be ignored are refused: a SASL password set without a SASL
        protocol would otherwise connect in plain text, silently."""
        protocol = self.kafka_security_protocol
        sasl = {"SERVICESCORE_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
                "SERVICESCORE_KAFKA_SASL_USERNAME": self.kafka_sasl_username,
                "SERVICESCORE_KAFKA_SASL_PASSWORD": self.kafka_sasl_password}
        if protocol.startswith("SASL"):
            missing = [name for name, value in list(sasl.items())[1:] if not value]
            if missing:
                raise ValueError(f"SERVICESCORE_KAFKA_SECURITY_PROTOCOL is {protocol}: set "
                                 f"{' and '.join(missing)}")
        else:
            given = [name for name, value in sasl.items() if value]
            if given:
                raise ValueError(f"{given[0]} is set but SERVICESCORE_KAFKA_SECURITY_PROTOCOL is "
                                 f"{protocol} (use SASL_SSL or SASL_PLAINTEXT)")
        if self.kafka_ssl_cafile is not None and protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(f"SERVICESCORE_KAFKA_SSL_CAFILE is set but "
                             f"SERVICESCORE_KAFKA_SECURITY_PROTOCOL is {protocol} "
                             "(use SSL or SASL_SSL)")
        return self

    @field_validator("kafka_ssl_cafile")
    @classmethod
    def _cafile_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("work_hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, spans in value.items():
            if day not in DAY_NAMES:
                raise ValueError(f"unknown weekday {day!r} (use {', '.join(DAY_NAMES)})")
            for span in spans:
                if not _HOURS.match(span) or span[:5] >= span[6:]:
                    raise ValueError(f"bad working hours {span!r} for {day} (use HH:MM-HH:MM)")
        return value

    @field_validator("frt_targets_s", "aht_targets_s", "onsite_targets_s")
    @classmethod
    def _all_priorities(cls, value: dict[str, float]) -> dict[str, float]:
        missing = {"P1", "P2", "P3", "P4"} - set(value)
        if missing:
            raise ValueError(f"missing target for {', '.join(sorted(missing))}")
        return value

    @property
    def api_address(self) -> tuple[str, int]:
        return host_port(self.api)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        return host_port(self.metrics) if self.metrics else None

    @property
    def api_secret(self) -> str | None:
        """The API token as text; an empty one counts as none."""
        return self.api_token.get_secret_value() or None if self.api_token else None

    @property
    def dsn(self) -> str:
        if self.clickhouse_dsn is not None:
            return self.clickhouse_dsn.get_secret_value()
        return f"chdb:///{(self.data_dir / 'clickhouse').resolve().as_posix().lstrip('/')}"

    @property
    def database(self) -> str:
        """The ClickHouse database: the DSN's, else SERVICESCORE_CLICKHOUSE_DATABASE."""
        return dsn_database(self.dsn) or self.clickhouse_database

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    @property
    def kafka_folder(self) -> Path:
        return self.kafka_home or (self.data_dir / "kafka")

    def work_calendar(self) -> WorkCalendar:
        return WorkCalendar(self.timezone, dict(self.work_hours), frozenset(self.holidays),
                            frozenset(self.workdays))

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def masked(self) -> dict:
        """Every setting, secrets masked (a DSN's password too), for printing."""
        shown = self.model_dump(mode="json")
        shown["clickhouse_dsn"] = masked_dsn(self.dsn)
        for key in ("kafka_sasl_password", "api_token"):
            shown[key] = "***" if getattr(self, key) else None
        return shown


# An option whose name says it is a secret: its value, up to the next option.
_SECRET_OPTION = re.compile(r"([?&][^=&#]*(?:pass|secret|token|key)[^=&#]*=)[^&#]*",
                            re.IGNORECASE)


def masked_dsn(dsn: str) -> str:
    """``dsn`` with its password, and the value of any option that looks like a secret
    (``?password=``, ``?access_token=``), shown as ``***``. The user name stays: it says who
    connects. The password runs from the first ``:`` of the user part to the *last* ``@``, so
    one with an unescaped ``@``, ``/`` or ``?`` is masked whole (better too much than a part)."""
    # Options first: an unescaped @ in an option's value must not pass for the end of a user
    # part that is not there.
    scheme, slashes, rest = _SECRET_OPTION.sub(r"\1***", dsn).partition("//")
    user, at, host = rest.rpartition("@")
    if slashes and at and ":" in user:
        rest = f"{user.partition(':')[0]}:***@{host}"
    return f"{scheme}{slashes}{rest}"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s)?\s*$")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}


def duration_ms(text: str) -> int:
    """``60d``, ``36h``, ``90m``, ``30s`` or a bare number of days, as milliseconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 60d, 36h, 90m or 30s")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2) or "d"])


def default_data_dir() -> Path:
    """The data folder unless SERVICESCORE_DATA_DIR names one: the user's data folder of the
    platform, ``$XDG_DATA_HOME/servicescore`` (by default ``~/.local/share/servicescore``),
    ``~/Library/Application Support/servicescore`` on macOS, ``%LOCALAPPDATA%\\servicescore``
    on Windows."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "servicescore"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "servicescore"
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # The XDG base directory spec: a relative path there is invalid and is ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "servicescore"


def dsn_database(dsn: str) -> str | None:
    """The database a ClickHouse DSN names, as clickhouse-connect reads it: the first segment of
    the path (``http://host:8123/sales``, ``chdb://memory/sales``) or ``?database=``; None for
    ``chdb:///folder``, whose path is the data folder."""
    parts = urlsplit(dsn)
    named = None
    if parts.scheme != "chdb" or parts.netloc:
        named = unquote(parts.path[1:].split("/")[0]) or None
    return named or parse_qs(parts.query).get("database", [None])[0] or None


def host_port(address: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as its parts; ValueError names what is wrong."""
    match = _ADDRESS.match(address)
    if not match or not 1 <= int(match[2]) <= 65535:
        raise ValueError(f"{address!r} is not host:port (port 1-65535)")
    return match[1].strip("[]"), int(match[2])


def _json(text: str, wanted: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"not valid JSON (a {wanted})") from None


def load_settings(**overrides) -> Settings:
    """Settings from the environment; a bad value raises ConfigError naming it in one line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"] and message.startswith("SERVICESCORE_"):
            raise ConfigError(message) from None  # a rule across settings names them itself
        name = "SERVICESCORE_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {message}") from None
    except SettingsError as exc:  # e.g. an unreadable .env file
        raise ConfigError(f"settings: {exc}") from None


def writable_folder(path: Path, variable: str) -> Path:
    """``path`` created if missing and proven writable, or a ConfigError naming ``variable``.

    A probe file, not os.access: root passes os.access on a read-only file system."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{variable}: {path} is not a writable folder "
                          f"({exc.strerror or exc})") from None
    return path
