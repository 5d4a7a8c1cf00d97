"""SQLite in WAL mode: contacts, calls, turns, events and safety decisions.

Ordered, named migrations are recorded in the database and each is applied in one
IMMEDIATE transaction, so several processes opening a fresh database at once agree on its
schema. Every write happens inside `transaction()`: all of it lands, or none of it."""

from __future__ import annotations

import errno
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from twilio_caller.errors import ConfigError, InternalError

BUSY_TIMEOUT_MS = 30_000  # a write waits this long for another process's transaction
READ_BUSY_TIMEOUT_MS = 2_000  # a read waits at most this long on a locked database


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_initial",
        (
            """CREATE TABLE contacts (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                name_key TEXT NOT NULL UNIQUE,
                number TEXT NOT NULL UNIQUE,
                timezone TEXT,
                voice TEXT,
                notes TEXT,
                opted_out_at TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE calls (
                id TEXT PRIMARY KEY,
                twilio_sid TEXT UNIQUE,
                contact_id INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
                to_name TEXT,
                to_number TEXT NOT NULL,
                message TEXT,
                mode TEXT NOT NULL,
                keep_open INTEGER NOT NULL DEFAULT 0,
                voice TEXT,
                language TEXT,
                status TEXT NOT NULL,
                placed INTEGER NOT NULL DEFAULT 1,
                answered_by TEXT,
                no_reply_reason TEXT,
                voicemail_left INTEGER NOT NULL DEFAULT 0,
                duration_seconds INTEGER,
                error TEXT,
                opted_out INTEGER NOT NULL DEFAULT 0,
                token TEXT NOT NULL,
                created_at TEXT NOT NULL,
                ended_at TEXT
            )""",
            "CREATE INDEX calls_by_contact ON calls(contact_id, created_at)",
            "CREATE INDEX calls_by_time ON calls(created_at)",
            """CREATE TABLE turns (
                id INTEGER PRIMARY KEY,
                call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
                speaker TEXT NOT NULL CHECK (speaker IN ('assistant', 'callee')),
                text TEXT NOT NULL,
                confidence REAL,
                at TEXT NOT NULL,
                dedupe_key TEXT UNIQUE
            )""",
            "CREATE INDEX turns_by_call ON turns(call_id, id)",
            """CREATE TABLE events (
                id INTEGER PRIMARY KEY,
                call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                status TEXT,
                sequence_number INTEGER,
                payload TEXT NOT NULL DEFAULT '{}',
                at TEXT NOT NULL,
                UNIQUE (call_id, kind, sequence_number)
            )""",
            """CREATE TABLE safety_decisions (
                id INTEGER PRIMARY KEY,
                call_id TEXT REFERENCES calls(id) ON DELETE SET NULL,
                tool TEXT NOT NULL,
                to_number TEXT,
                contact_id INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
                allowed INTEGER NOT NULL,
                rule TEXT,
                reason TEXT NOT NULL,
                message TEXT,
                decided_at TEXT NOT NULL
            )""",
            "CREATE INDEX decisions_by_time ON safety_decisions(decided_at)",
        ),
    ),
    Migration(
        "0002_call_state",
        (
            # Everything Twilio's next request for a live call needs: the sequences the
            # callback URLs carry, the agent's actions not yet delivered, who runs the call.
            """CREATE TABLE call_state (
                call_id TEXT PRIMARY KEY REFERENCES calls(id) ON DELETE CASCADE,
                gather_seq INTEGER NOT NULL DEFAULT 0,
                hold_seq INTEGER NOT NULL DEFAULT 0,
                reprompts_left INTEGER,
                last_prompt TEXT NOT NULL DEFAULT '[]',
                pending_actions TEXT NOT NULL DEFAULT '[]',
                max_seconds INTEGER,
                owner TEXT,
                lease_until TEXT,
                updated_at TEXT NOT NULL
            )""",
            # The TwiML given to each request key (voice, gather:N, hold:N): a replay or a
            # retry gets exactly that answer, also from another server process.
            """CREATE TABLE call_answers (
                call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
                request_key TEXT NOT NULL,
                twiml TEXT NOT NULL,
                at TEXT NOT NULL,
                PRIMARY KEY (call_id, request_key)
            )""",
            # Status callbacks without a SequenceNumber are deduplicated by their content.
            "ALTER TABLE events ADD COLUMN content_key TEXT",
            "CREATE UNIQUE INDEX events_by_content ON events(call_id, kind, content_key)",
            # Why a call ended when no callback said so (reconciliation: unknown, ...).
            "ALTER TABLE calls ADD COLUMN end_reason TEXT",
            # The one server of a home: its lease, renewed while it runs.
            """CREATE TABLE server_lease (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                pid INTEGER NOT NULL,
                lease_until TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        "0003_scheduled_calls",
        (
            """CREATE TABLE scheduled_calls (
                id TEXT PRIMARY KEY,
                arguments TEXT NOT NULL,
                to_name TEXT,
                to_number TEXT NOT NULL,
                due_at TEXT NOT NULL,
                retry_on TEXT NOT NULL DEFAULT '[]',
                max_attempts INTEGER NOT NULL DEFAULT 1,
                spacing_minutes REAL NOT NULL DEFAULT 10,
                when_allowed INTEGER NOT NULL DEFAULT 0,
                attempts_made INTEGER NOT NULL DEFAULT 0,
                state TEXT NOT NULL,
                claimed_at TEXT,
                call_ids TEXT NOT NULL DEFAULT '[]',
                outcome TEXT,
                detail TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX scheduled_by_due ON scheduled_calls(state, due_at)",
        ),
    ),
)


class Store:
    """One connection, shared by the threads of one process under a lock."""

    def __init__(self, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.path = path
        self._lock = threading.RLock()
        _refuse_emptied(path)
        try:
            self._connection = _connect(path)
            self._migrate(migrations)
        except ConfigError:
            raise
        except (sqlite3.DatabaseError, OSError) as exc:
            raise database_error(path, exc) or InternalError(f"cannot open the database {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._connection.close()

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

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        if self._pending(migrations):  # a read first: opening an up-to-date database writes nothing
            with self.transaction() as connection:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
                )
        for migration in self._pending(migrations):
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

    def _pending(self, migrations: Sequence[Migration]) -> list[Migration]:
        exists = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        applied = {row["name"] for row in self.query("SELECT name FROM schema_migrations")} if exists else set()
        return [migration for migration in migrations if migration.name not in applied]


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
