"""ClickHouse through clickhouse-connect: the embedded engine (chdb:///folder) or a server.

One ``Storage`` per process and database. Calls are blocking (chDB has no async client): async
callers run them in a thread (``asyncio.to_thread``).

Opening runs no DDL and writes nothing, so a read-only ClickHouse user can read; only
``migrate`` creates the database and its tables. A read against a database that is missing or
behind the migrations says so in one line (``run servicescore migrate first``).
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from servicescore.core.errors import StorageError, StorageLocked

# The migrations ship as package data of the top-level package ``sql`` (the repository's sql/
# folder), so an installed copy migrates without the checkout.
SQL_PACKAGE = "sql"
# chDB 26.9 defaults to async inserts; a sink commits offsets only after data is stored.
INSERT_SETTINGS = {"async_insert": 0, "wait_for_async_insert": 1}
MIGRATE_FIRST = "run servicescore migrate first"
_OPENED: set[Path] = set()  # chDB folders this process has opened
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What ClickHouse says of a table or column a pending migration would create.
# A parameterized view is called like a table function: UNKNOWN_FUNCTION when it is missing.
_MISSING = ("(UNKNOWN_TABLE)", "(UNKNOWN_DATABASE)", "(UNKNOWN_IDENTIFIER)", "(UNKNOWN_FUNCTION)",
            "(NO_SUCH_COLUMN_IN_TABLE)", "(THERE_IS_NO_COLUMN)", "(NOT_FOUND_COLUMN_IN_BLOCK)")
_MIGRATION = re.compile(r"^[0-9]{3}_.+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    @property
    def file(self) -> str:
        return f"sql/{self.name}.sql"

    def statements(self) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines()
                         if not line.lstrip().startswith("--"))
        return [s.strip() for s in body.split(";") if s.strip()]


def migrations(folder: Traversable | Path | None = None) -> list[Migration]:
    """The migrations in ``folder`` (default: the shipped ones), in version order."""
    folder = files(SQL_PACKAGE) if folder is None else folder
    found = []
    for path in sorted((p for p in folder.iterdir() if _MIGRATION.match(p.name)),
                       key=lambda p: p.name):
        # Text mode reads CRLF as LF: a Windows checkout keeps the recorded checksums.
        found.append(Migration(int(path.name[:3]), path.name.removesuffix(".sql"),
                               path.read_text(encoding="utf-8")))
    return found


def chdb_folder(dsn: str) -> Path | None:
    """The data folder of an embedded-engine DSN (``chdb:///folder?options``), else None."""
    parts = urlsplit(dsn)
    if parts.scheme != "chdb" or parts.netloc:  # chdb://memory/db holds no folder
        return None
    return Path(unquote(parts.path))


class Storage:
    def __init__(self, dsn: str, database: str):
        if not _DATABASE.match(database):
            raise StorageError(f"bad database name {database!r}")
        self.dsn, self.database = dsn, database
        self._lock = threading.Lock()  # the chDB session is not safe for concurrent calls
        self.client = self._open()  # None while the database does not exist

    def command(self, sql: str, parameters: dict | None = None):
        with self._lock:
            return self._checked(self._session().command, sql, parameters=parameters)

    def rows(self, sql: str, parameters: dict | None = None) -> list[dict]:
        with self._lock:
            result = self._checked(self._session().query, sql, parameters=parameters)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def insert(self, table: str, rows: Sequence[Sequence], columns: Sequence[str],
               token: str | None = None) -> None:
        settings = dict(INSERT_SETTINGS)
        if token:
            settings["insert_deduplication_token"] = token
        with self._lock:
            self._checked(self._session().insert, table, rows, column_names=list(columns),
                          settings=settings)

    def pending(self, folder: Traversable | Path | None = None) -> list[Migration]:
        """The shipped migrations this database has not recorded (all of them when it has no
        schema); reads only."""
        with self._lock:
            if self.client is None:
                self.client = self._open()
            done = {} if self.client is None else self._recorded()
        return [m for m in migrations(folder) if m.version not in done]

    def migrate(self, folder: Traversable | Path | None = None) -> list[str]:
        """Apply the migrations not yet recorded, in order; returns the names applied.

        Refuses, before applying anything, when an applied migration's file has changed since:
        the database was built from the old text, and a silent difference would only show later
        as a query failing on a column the file says exists."""
        known = migrations(folder)
        with self._lock:
            if self.client is None:
                bootstrap = _client(self.dsn)
                _run(bootstrap.command, f"CREATE DATABASE IF NOT EXISTS {self.database}")
                self.client = _client(self.dsn, self.database)
                bootstrap.close()
            _run(self.client.command,
                 "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
                 "checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
                 "ENGINE = MergeTree ORDER BY version")
            done = self._recorded()
            for migration in known:
                recorded = done.get(migration.version)
                if recorded is not None and recorded != migration.checksum:
                    raise StorageError(
                        f"{migration.file} has changed since it was applied to database "
                        f"{self.database} (checksum {recorded} then, {migration.checksum} now): "
                        "restore it and put the change in a new migration")
            applied = []
            for migration in known:
                if migration.version in done:
                    continue
                for statement in migration.statements():
                    _run(self.client.command, statement)
                _run(self.client.insert, "schema_migrations",
                     [[migration.version, migration.name, migration.checksum]],
                     column_names=["version", "name", "checksum"], settings=INSERT_SETTINGS)
                applied.append(migration.name)
        return applied

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def _open(self):
        """A session on the database, or None when the database does not exist (yet)."""
        try:
            return _client(self.dsn, self.database)
        except _NoDatabase:
            return None

    def _session(self):
        if self.client is None:
            self.client = self._open()  # `migrate` may have run since, in another process
        if self.client is None:
            raise StorageError(f"ClickHouse database {self.database} does not exist: "
                               f"{MIGRATE_FIRST}")
        return self.client

    def _recorded(self) -> dict[int, str]:
        """Applied versions and their checksums; empty when there is no schema_migrations."""
        try:
            rows = self.client.query("SELECT version, checksum FROM schema_migrations")
        except ClickHouseError as exc:
            if "UNKNOWN_TABLE" in str(exc):
                return {}
            raise _storage_error(exc) from None
        return dict(rows.result_rows)

    def _checked(self, call, *args, **kwargs):
        """``call(...)``; when ClickHouse does not know a table or column and the schema is
        behind the migrations, the missing migration is the cause, so say that."""
        try:
            return call(*args, **kwargs)
        except (ClickHouseError, OSError, RuntimeError) as exc:
            failure = _storage_error(exc)
            unknown = isinstance(exc, ClickHouseError) and any(n in str(exc) for n in _MISSING)
        if not unknown:
            raise failure from None
        try:
            done = self._recorded()
        except StorageError:
            raise failure from None  # cannot tell: the original reason stands
        missing = [m for m in migrations() if m.version not in done]
        if not missing:
            raise failure from None
        raise StorageError(
            f"ClickHouse database {self.database} is not migrated ({len(missing)} migration(s) "
            f"missing, from {missing[0].name}): {MIGRATE_FIRST}") from None


class _NoDatabase(Exception):
    """The DSN's server or folder is there, the database is not."""


def _check_unlocked(folder: Path) -> None:
    """Refuse before chDB tries: it prints the lock failure to stderr itself."""
    status = folder / "status"
    if not status.exists():
        return
    with open(status, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _storage_error(RuntimeError("Cannot lock file")) from None
        fcntl.flock(handle, fcntl.LOCK_UN)


def _client(dsn: str, database: str | None = None):
    folder = chdb_folder(dsn)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        if folder.resolve() not in _OPENED:  # our own session holds the lock itself
            _check_unlocked(folder)
        _OPENED.add(folder.resolve())
    try:
        kwargs = {"database": database} if database else {}
        return clickhouse_connect.get_client(dsn=_without_database_option(dsn), **kwargs)
    except Exception as exc:  # the driver raises many types; all mean "cannot open storage"
        if database and "UNKNOWN_DATABASE" in str(exc):
            raise _NoDatabase(database) from None
        raise _storage_error(exc) from None


def _without_database_option(dsn: str) -> str:
    """``dsn`` less its ``?database=``: the caller names the database (the settings read it from
    there), and clickhouse-connect refuses a database given both ways with a TypeError."""
    parts = urlsplit(dsn)
    options = parse_qsl(parts.query, keep_blank_values=True)
    if all(key != "database" for key, _ in options):
        return dsn  # as written: urlunsplit would turn chdb:///folder into chdb:/folder
    kept = urlencode([(key, value) for key, value in options if key != "database"])
    return f"{dsn.partition('?')[0]}?{kept}" if kept else dsn.partition("?")[0]


def _run(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except (ClickHouseError, OSError, RuntimeError) as exc:
        raise _storage_error(exc) from None


def _storage_error(exc: Exception) -> StorageError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "Cannot lock file" in str(exc) or "Unable to open the chdb engine" in text:
        return StorageLocked(
            "the embedded ClickHouse data folder is in use by another process "
            "(is `servicescore run` running? its HTTP API serves this command)"
        )
    return StorageError(f"ClickHouse: {text[:300]}")
