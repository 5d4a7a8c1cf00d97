"""A SQLite store's data as plain rows, and loading such rows into an empty one (store export
and import). Column names from a copy are checked against the schema before any SQL uses them."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from twilio_caller.store.ports import TABLES, BadCopy, NotEmpty
from twilio_caller.store.sqlite._common import marks
from twilio_caller.store.sqlite.database import Database

ORDER = {"calls": "created_at, rowid", "call_state": "call_id", "call_answers": "call_id, request_key"}


class SqliteTables:
    def __init__(self, database: Database) -> None:
        self._db = database

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        return {table: [dict(row) for row in self._db.query(
            f"SELECT * FROM {table} ORDER BY {ORDER.get(table, 'id')}")]  # noqa: S608 - names from TABLES
            for table in TABLES}

    def load(self, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
        with self._db.transaction() as connection:
            for table in TABLES:
                rows = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
                if rows:
                    raise NotEmpty(table, rows)
            written = {}
            for table in TABLES:
                known = {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}
                for row in tables.get(table, ()):
                    unknown = sorted(set(row) - known)
                    if unknown:
                        raise BadCopy(table, f"no column {unknown[0]!r}")
                    try:
                        connection.execute(
                            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks(list(row))})",  # noqa: S608
                            list(row.values()))
                    except (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError) as exc:
                        raise BadCopy(table, " ".join(str(exc).split())) from exc
                written[table] = len(tables.get(table, ()))
        return written
