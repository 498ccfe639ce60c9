"""ClickHouse through clickhouse-connect: the embedded engine (chdb:///folder) or a server.

One ``Storage`` per process and database. Calls are blocking (chDB has no async client): async
callers run them in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from servicescore.core.errors import StorageError, StorageLocked

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
# chDB 26.9 defaults to async inserts; a sink commits offsets only after data is stored.
INSERT_SETTINGS = {"async_insert": 0, "wait_for_async_insert": 1}
_OPENED: set[Path] = set()  # chDB folders this process has opened
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines()
                         if not line.lstrip().startswith("--"))
        return [s.strip() for s in body.split(";") if s.strip()]


def migrations(folder: Path = SQL_DIR) -> list[Migration]:
    found = []
    for path in sorted(folder.glob("[0-9][0-9][0-9]_*.sql")):
        found.append(Migration(int(path.name[:3]), path.stem, path.read_text(encoding="utf-8")))
    return found


class Storage:
    def __init__(self, dsn: str, database: str):
        if not _DATABASE.match(database):
            raise StorageError(f"bad database name {database!r}")
        self.dsn, self.database = dsn, database
        self._lock = threading.Lock()  # the chDB session is not safe for concurrent calls
        bootstrap = _client(dsn)
        _run(bootstrap.command, f"CREATE DATABASE IF NOT EXISTS {database}")
        self.client = _client(dsn, database)

    def command(self, sql: str, parameters: dict | None = None):
        with self._lock:
            return _run(self.client.command, sql, parameters=parameters)

    def rows(self, sql: str, parameters: dict | None = None) -> list[dict]:
        with self._lock:
            result = _run(self.client.query, sql, parameters=parameters)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def insert(self, table: str, rows: Sequence[Sequence], columns: Sequence[str],
               token: str | None = None) -> None:
        settings = dict(INSERT_SETTINGS)
        if token:
            settings["insert_deduplication_token"] = token
        with self._lock:
            _run(self.client.insert, table, rows, column_names=list(columns), settings=settings)

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded, in order; returns the names applied."""
        self.command(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
            "checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = MergeTree ORDER BY version"
        )
        done = {r["version"] for r in self.rows("SELECT version FROM schema_migrations")}
        applied = []
        for migration in migrations():
            if migration.version in done:
                continue
            for statement in migration.statements():
                self.command(statement)
            self.insert("schema_migrations", [[migration.version, migration.name,
                                               migration.checksum]],
                        ["version", "name", "checksum"])
            applied.append(migration.name)
        return applied

    def close(self) -> None:
        self.client.close()


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
    if dsn.startswith("chdb:"):
        folder = Path(dsn.removeprefix("chdb://"))
        folder.mkdir(parents=True, exist_ok=True)
        if folder.resolve() not in _OPENED:  # our own session holds the lock itself
            _check_unlocked(folder)
        _OPENED.add(folder.resolve())
    try:
        kwargs = {"database": database} if database else {}
        return clickhouse_connect.get_client(dsn=dsn, **kwargs)
    except Exception as exc:  # the driver raises many types; all mean "cannot open storage"
        raise _storage_error(exc) from None


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
