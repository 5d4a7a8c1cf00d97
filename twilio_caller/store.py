"""SQLite in WAL mode: contacts, calls, turns, events and safety decisions.

Ordered, named migrations are recorded in the database and each is applied in one
IMMEDIATE transaction, so several processes opening a fresh database at once agree on its
schema. Every write happens inside `transaction()`: all of it lands, or none of it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from twilio_caller.errors import InternalError

BUSY_TIMEOUT_MS = 30_000


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
        try:
            self._connection = _connect(path)
            self._migrate(migrations)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise InternalError(f"cannot open the database {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def query(self, sql: str, parameters: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    def applied_migrations(self) -> list[str]:
        rows = self.query("SELECT name FROM schema_migrations ORDER BY name")
        return [row["name"] for row in rows]

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        for migration in migrations:
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


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection
