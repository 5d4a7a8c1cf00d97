"""PostgreSQL through psycopg 3: the connection, its transactions, the advisory locks and the
migrations. Every write happens inside `transaction()`: all of it lands, or none of it.

Migrating takes a transaction-level advisory lock, so several processes opening a fresh
database at once apply each named step exactly once; each step is one transaction (DDL is
transactional in PostgreSQL) recorded in `applied_migrations`."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Self

import psycopg
from psycopg.abc import Params, QueryNoTemplate
from psycopg.rows import DictRow, dict_row

from twilio_caller.errors import ConfigError
from twilio_caller.store.postgres.migrations import MIGRATIONS
from twilio_caller.store.sql.dialect import Dialect, Lock
from twilio_caller.store.sqlite.migrations import Migration

Connection = psycopg.Connection[DictRow]

# Advisory lock classes (the first key of pg_advisory_xact_lock(int, int)); the second key is
# 0 or hashtext() of what is locked.
LOCK_MIGRATIONS = Lock.MIGRATIONS
LOCK_ACCOUNT = Lock.ACCOUNT
LOCK_CONTACT = Lock.CONTACT
LOCK_CALL = Lock.CALL
LOCK_LEASE = Lock.LEASE
LOCK_CONTACT_BOOK = Lock.CONTACT_BOOK
CONNECT_TIMEOUT_SECONDS = 10


class QmarkCursor(psycopg.Cursor[DictRow]):
    """Takes SQLite's `?` parameter marks as well as psycopg's `%s`, so the repositories'
    SQL is written once (`store/sql/`)."""

    def execute(self, query: QueryNoTemplate, params: Params | None = None, *,  # type: ignore[override]
                prepare: bool | None = None, binary: bool | None = None) -> Self:
        """(The store sends its SQL as text, never as a t-string template.)"""
        if isinstance(query, str):
            query = query.replace("?", "%s")
        return super().execute(query, params, prepare=prepare, binary=binary)


def lock(connection: Connection, kind: Lock, subject: str | int | None = None) -> None:
    """A transaction-level advisory lock: held until this transaction ends, in every process."""
    if subject is None:
        connection.execute("SELECT pg_advisory_xact_lock(%s, 0)", (int(kind),))
    else:
        connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (int(kind), str(subject)))


class PgDatabase:
    """One connection, shared by the threads of one process under a lock."""

    dialect = Dialect("postgresql", insertion_order="seq", for_update=" FOR UPDATE", lock=lock, one_machine=False)

    def __init__(self, url: str, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._connection = _connect(url)
        with self._mapped():
            self.migrate(migrations)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN … COMMIT, or ROLLBACK when the block raises. A connection lost since the last
        use (the server restarted, an idle timeout) is opened again first."""
        with self._lock, self._mapped(), ExitStack() as stack:
            self._reconnect_if_lost()
            try:
                stack.enter_context(self._connection.transaction())
            except psycopg.OperationalError:  # BEGIN failed: nothing was done, begin again
                if not self._connection.broken:
                    raise
                self._reconnect_if_lost()
                stack.enter_context(self._connection.transaction())
            yield self._connection

    def query(self, sql: str, parameters: Sequence[object] = ()) -> list[dict[str, Any]]:
        """A read; on a connection found lost it is opened again and the read asked once more."""
        with self._lock, self._mapped():
            self._reconnect_if_lost()
            try:
                return self._connection.execute(sql, parameters).fetchall()
            except psycopg.OperationalError:
                if not self._connection.broken:
                    raise
            self._reconnect_if_lost()
            return self._connection.execute(sql, parameters).fetchall()

    def _reconnect_if_lost(self) -> None:
        if self._connection.broken:
            self._connection.close()
            self._connection = _connect(self.url)

    def applied_migrations(self) -> list[str]:
        return [row["name"] for row in self.query("SELECT name FROM applied_migrations ORDER BY name")]

    def pending_migrations(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
        exists = self.query("SELECT to_regclass('applied_migrations') IS NOT NULL AS present")[0]["present"]
        applied = set(self.applied_migrations()) if exists else set()
        return [migration for migration in migrations if migration.name not in applied]

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """A lost or refused connection becomes a ConfigError naming the database and the fix."""
        try:
            yield
        except psycopg.OperationalError as exc:
            raise connection_error(self.url, exc) from exc

    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
        """Apply the steps not applied yet, each in one transaction under the migrations lock;
        the names this call applied (another process may have applied some meanwhile)."""
        if not self.pending_migrations(migrations):  # an up-to-date database: nothing written
            return []
        applied = []
        for migration in migrations:
            with self.transaction() as connection:
                lock(connection, LOCK_MIGRATIONS)
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS applied_migrations ("
                    "name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                done = connection.execute(
                    "SELECT 1 FROM applied_migrations WHERE name = %s", (migration.name,)).fetchone()
                if done:
                    continue
                for statement in migration.statements:
                    connection.execute(statement)
                connection.execute("INSERT INTO applied_migrations (name) VALUES (%s)", (migration.name,))
            applied.append(migration.name)
        return applied


def _connect(url: str) -> Connection:
    try:
        return psycopg.connect(url, autocommit=True, row_factory=dict_row, cursor_factory=QmarkCursor,
                               connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except (psycopg.Error, ValueError) as exc:
        raise connection_error(url, exc) from exc


def redact(url: str) -> str:
    """The URL without its password (safe to show and log)."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:****@", url)


def connection_error(url: str, exc: BaseException) -> ConfigError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    detail = detail.replace(url, redact(url))
    return ConfigError(
        f"the PostgreSQL database {redact(url)} cannot be used ({detail}): check that the server "
        "runs and accepts this user, and that the database exists (createdb), or unset store.url / "
        "TWILIO_CALLER_DATABASE_URL to use the SQLite file in the home"
    )
