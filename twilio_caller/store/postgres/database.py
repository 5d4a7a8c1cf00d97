"""PostgreSQL through psycopg 3: the connection, its transactions, the advisory locks and the
migrations. Every write happens inside `transaction()`: all of it lands, or none of it.

Migrating takes a transaction-level advisory lock, so several processes opening a fresh
database at once apply each named step exactly once; each step is one transaction (DDL is
transactional in PostgreSQL) recorded in `applied_migrations`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any, Self, TypeVar

import psycopg
from psycopg.abc import Params, QueryNoTemplate
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

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
POOL_SIZE = 10  # connections per process (a server: its event loop's store threads, the wake-ups aside)
POOL_TIMEOUT_SECONDS = 10.0  # no free connection this long: a clear error (ConfigError), never a hang
T = TypeVar("T")


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
    """A pool of connections (psycopg_pool): each transaction or read takes one for its own
    time, so threads (the CLI's, the server's store calls made off its event loop) never wait
    on each other's round trips. A pool with no free connection for `pool_timeout` seconds is
    a clear error, never a hang."""

    dialect = Dialect("postgresql", insertion_order="seq", for_update=" FOR UPDATE", lock=lock, one_machine=False,
                      json_pairs="COALESCE(json_agg(json_build_array({}, {}))::text, '[]')")

    def __init__(self, url: str, migrations: Sequence[Migration] = MIGRATIONS, *,
                 pool_size: int = POOL_SIZE, pool_timeout: float = POOL_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        _connect(url).close()  # unreachable, refused, no such database: the error names it now
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url, min_size=1, max_size=pool_size, timeout=pool_timeout, open=False,
            name="twilio-caller", connection_class=Connection, kwargs=connection_options(),
        )
        self._pool.open()
        self._workers = ThreadPoolExecutor(pool_size, thread_name_prefix="twilio-caller store")
        with self._mapped():
            self.migrate(migrations)

    def close(self) -> None:
        self._workers.shutdown(wait=True)
        self._pool.close()

    async def off_loop(self, work: Callable[..., T], *arguments: Any) -> T:
        """Run a store call in one of the store's threads (as many as connections): the event
        loop goes on serving while it waits on the database."""
        return await asyncio.get_running_loop().run_in_executor(self._workers, partial(work, *arguments))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN … COMMIT, or ROLLBACK when the block raises, on a connection of the pool. A
        connection lost since its last use (the server restarted, an idle timeout) is dropped
        and BEGIN tried on another."""
        with self._mapped(), ExitStack() as stack:
            for attempt in range(self.pool_size + 1):
                connection = stack.enter_context(self._connection())
                try:
                    stack.enter_context(connection.transaction())
                    break
                except psycopg.OperationalError:  # BEGIN failed: nothing was done, begin again
                    if not connection.broken or attempt == self.pool_size:
                        raise
                    stack.close()  # the broken connection goes back: the pool drops it
            yield connection

    def query(self, sql: str, parameters: Sequence[object] = ()) -> list[dict[str, Any]]:
        """A read; on a connection found lost it is asked again on another."""
        with self._mapped():
            for attempt in range(self.pool_size + 1):
                with self._connection() as connection:
                    try:
                        return connection.execute(sql, parameters).fetchall()
                    except psycopg.OperationalError:
                        if not connection.broken or attempt == self.pool_size:
                            raise
            raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        try:
            with self._pool.connection() as connection:
                yield connection
        except PoolTimeout as exc:
            raise pool_exhausted(self.url, self.pool_size, self.pool_timeout) from exc

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


def connection_options() -> dict[str, Any]:
    """How every store connection is opened: autocommit (transactions are explicit), rows as
    dicts, `?` marks taken."""
    return {"autocommit": True, "row_factory": dict_row, "cursor_factory": QmarkCursor,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS}


def _connect(url: str) -> Connection:
    try:
        return psycopg.connect(url, **connection_options())
    except (psycopg.Error, ValueError) as exc:
        raise connection_error(url, exc) from exc


def redact(url: str) -> str:
    """The URL without its password (safe to show and log)."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:****@", url)


def pool_exhausted(url: str, size: int, seconds: float) -> ConfigError:
    return ConfigError(
        f"the PostgreSQL database {redact(url)} is not answering: all {size} of this process's connections "
        f"stayed busy for {seconds:g} s. Look for a long transaction or a lock held in pg_stat_activity "
        "(SELECT pid, state, query FROM pg_stat_activity), end it (pg_terminate_backend), and try again"
    )


def connection_error(url: str, exc: BaseException) -> ConfigError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    detail = detail.replace(url, redact(url))
    return ConfigError(
        f"the PostgreSQL database {redact(url)} cannot be used ({detail}): check that the server "
        "runs and accepts this user, and that the database exists (createdb), or unset store.url / "
        "TWILIO_CALLER_DATABASE_URL to use the SQLite file in the home"
    )
