"""store export / import on SQLite (`store/sql/tables.py`): the IMMEDIATE transaction keeps
other writers out, columns come from PRAGMA table_info."""

from __future__ import annotations

import sqlite3
from typing import Any

from twilio_caller.store.sql.tables import SqlTables


class SqliteTables(SqlTables):
    bad_row = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError)

    def _columns(self, connection: Any, table: str) -> set[str]:
        return {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}
