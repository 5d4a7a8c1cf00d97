"""The PostgreSQL store (`store.url: postgresql://…` or TWILIO_CALLER_DATABASE_URL): the same
repositories and the same named migrations as the SQLite store, on one database several
processes share. Needs psycopg 3 (the `[postgres]` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twilio_caller.store.postgres.database import PgDatabase, connection_error, redact
from twilio_caller.store.postgres.read_back import PgReader
from twilio_caller.store.postgres.migrations import MIGRATIONS
from twilio_caller.store.postgres.tables import PgTables
from twilio_caller.store.postgres.wakeups import PgWakeups
from twilio_caller.store.sql.store import SqlRepositories
from twilio_caller.store.sqlite.migrations import Migration

__all__ = ["MIGRATIONS", "PgDatabase", "PostgresStore", "connection_error", "redact"]


class PostgresStore(PgDatabase, SqlRepositories):
    def __init__(self, url: str, migrations: Sequence[Migration] = MIGRATIONS, **pool: Any) -> None:
        """`pool`: `pool_size`, `pool_timeout` (PgDatabase)."""
        PgDatabase.__init__(self, url, migrations, **pool)
        SqlRepositories.__init__(self, self, PgTables(self), PgWakeups(self))

    def reader(self) -> PgReader:
        return PgReader(self)
