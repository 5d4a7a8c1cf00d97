"""SQLite in WAL mode: the connection, its transactions and the migrations.

Ordered, named migrations are recorded in the database and each is applied in one
IMMEDIATE transaction, so several processes opening a fresh database at once agree on its
schema. Every write happens inside `transaction()`: all of it lands, or none of it."""

from __future__ import annotations

import errno
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from twilio_caller.errors import ConfigError, InternalError
from twilio_caller.store.sql.dialect import Dialect, no_lock
from twilio_caller.store.sqlite.migrations import MIGRATIONS, Migration

BUSY_TIMEOUT_MS = 30_000  # a write waits this long for another process's transaction
READ_BUSY_TIMEOUT_MS = 2_000  # a read waits at most this long on a locked database
T = TypeVar("T")


class Database:
    """One connection, shared by the threads of one process under a lock."""

    dialect = Dialect("sqlite", insertion_order="rowid", for_update="", lock=no_lock, one_machine=True,
                      json_pairs="json_group_array(json_array({}, {}))")

    def __init__(self, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.path = path
        self._lock = threading.RLock()
        _refuse_emptied(path)
        try:
            self._connection = _connect(path)
            self.migrate(migrations)
        except ConfigError:
            raise
        except (sqlite3.DatabaseError, OSError) as exc:
            raise database_error(path, exc) or InternalError(f"cannot open the database {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    async def off_loop(self, work: Callable[..., T], *arguments: Any) -> T:
        """A store call from the event loop: SQLite answers in microseconds from the process's
        own file, so it runs right here (as it always did; one server per home)."""
        return work(*arguments)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""
        with self._lock, self._mapped():
            self._connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            try:
                self._connection.execute("BEGIN IMMEDIATE")
            finally:
                self._connection.execute(f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS}")
            try:
                yield self._connection
            except BaseException:
                if self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def query(self, sql: str, parameters: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock, self._mapped():
            return self._connection.execute(sql, parameters).fetchall()

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """Database and disk problems become a ConfigError naming the file and the fix."""
        try:
            yield
        except (sqlite3.DatabaseError, OSError) as exc:
            mapped = database_error(self.path, exc)
            if mapped is None:  # a constraint, a bug in SQL: not the file's fault
                raise
            raise mapped from exc

    def applied_migrations(self) -> list[str]:
        rows = self.query("SELECT name FROM schema_migrations ORDER BY name")
        return [row["name"] for row in rows]

    def pending_migrations(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
        exists = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        applied = set(self.applied_migrations()) if exists else set()
        return [migration for migration in migrations if migration.name not in applied]

    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
        """Apply the steps not applied yet, each in one IMMEDIATE transaction; the names this
        call applied (another process may have applied some meanwhile)."""
        pending = self.pending_migrations(migrations)
        if pending:  # a read first: opening an up-to-date database writes nothing
            with self.transaction() as connection:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
                )
        applied = []
        for migration in pending:
            with self.transaction() as connection:
                done = connection.execute(
                    "SELECT 1 FROM schema_migrations WHERE name = ?", (migration.name,)
                ).fetchone()
                if done:
                    continue
                for statement in migration.statements:
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO schema_migrations (name) VALUES (?)", (migration.name,)
                )
            applied.append(migration.name)
        return applied


def database_error(path: Path, exc: BaseException) -> ConfigError | None:
    """What went wrong with the database file and what the person can do about it; None
    when the file is not the problem (a constraint, a bug in the SQL)."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return None
    detail = str(exc) or type(exc).__name__
    lowered = detail.lower()
    if "full" in lowered or getattr(exc, "errno", None) == errno.ENOSPC:
        fix = f"free some space on the disk that holds {path.parent}, then try again"
    elif "locked" in lowered or "busy" in lowered:
        fix = ("another program holds it locked (a `sqlite3` shell, a backup tool, a hung "
               "twilio-caller process); close that program and try again")
    elif "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered or isinstance(exc, PermissionError):
        fix = (f"twilio-caller needs to write {path.parent}: make it writable by you "
               f"(chmod u+rwx {path.parent}), or set TWILIO_CALLER_HOME to a writable directory")
    elif "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        fix = (f"it is damaged: restore it from a backup, or move it aside (mv {path} {path}.damaged) "
               "and twilio-caller starts a new, empty one (contacts and call history then start afresh)")
    else:
        return None
    return ConfigError(f"the database {path} cannot be used ({detail}): {fix}")


def _refuse_emptied(path: Path) -> None:
    """A zero-length database is a new one only when nothing says there was an older one:
    a write-ahead log with content, or a backup next to it, means it was emptied."""
    try:
        if not path.is_file() or path.stat().st_size:
            return
        wal = path.with_name(path.name + "-wal")
        evidence = [p for p in path.parent.glob(path.name + ".*") if p.is_file()]
        if wal.is_file() and wal.stat().st_size:
            evidence.insert(0, wal)
    except OSError:
        return
    if evidence:
        raise ConfigError(
            f"the database {path} is empty (0 bytes) but {evidence[0]} exists: it was probably "
            f"truncated. Restore it from the backup, or move the empty file aside "
            f"(mv {path} {path}.empty) to start afresh"
        )


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=READ_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")  # transaction() waits longer for the write lock
    return connection
