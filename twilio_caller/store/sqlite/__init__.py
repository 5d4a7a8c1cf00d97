"""The SQLite store: one database file in the home (WAL mode), the only place that holds SQL.
`SqliteStore` opens (and migrates) it and carries one repository per concern (`store/sql`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from twilio_caller.store.sql.store import SqlRepositories
from twilio_caller.store.sqlite.database import Database, database_error
from twilio_caller.store.sql.read_back import SqlReadBack
from twilio_caller.store.sqlite.migrations import MIGRATIONS, Migration
from twilio_caller.store.sqlite.tables import SqliteTables
from twilio_caller.store.sqlite.wakeups import LocalWakeups

__all__ = ["MIGRATIONS", "Migration", "SqliteStore", "database_error"]


class SqliteStore(Database, SqlRepositories):
    def __init__(self, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        Database.__init__(self, path, migrations)
        SqlRepositories.__init__(self, self, SqliteTables(self), LocalWakeups())

    def reader(self) -> SqlReadBack:
        return SqlReadBack(self)
