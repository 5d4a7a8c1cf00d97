"""A PostgreSQL store's data as plain rows, and loading such rows into an empty one (store
export and import). Column names from a copy are checked against the schema before any SQL
uses them; identity sequences continue after the highest id loaded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from twilio_caller.store.ports import TABLES, BadCopy, NotEmpty
from twilio_caller.store.postgres._common import marks, row
from twilio_caller.store.postgres.database import PgDatabase

ORDER = {"calls": "created_at, seq", "call_state": "call_id", "call_answers": "call_id, request_key"}
IDENTITIES = ("contacts", "turns", "events", "safety_decisions")


class PgTables:
    def __init__(self, database: PgDatabase) -> None:
        self._db = database

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        return {table: [row(found) for found in self._db.query(
            f"SELECT * FROM {table} ORDER BY {ORDER.get(table, 'id')}")]  # noqa: S608 - names from TABLES
            for table in TABLES}

    def load(self, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
        with self._db.transaction() as connection:
            for table in TABLES:
                connection.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
                found = connection.execute(f"SELECT COUNT(*) AS n FROM {table}").fetchone()  # noqa: S608
                if found and found["n"]:
                    raise NotEmpty(table, int(found["n"]))
            written = {}
            for table in TABLES:
                known = {column["column_name"] for column in connection.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND table_name = %s", (table,))} - {"seq"}
                for values in tables.get(table, ()):
                    unknown = sorted(set(values) - known)
                    if unknown:
                        raise BadCopy(table, f"no column {unknown[0]!r}")
                    try:
                        connection.execute(
                            f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks(list(values))})",  # noqa: S608
                            list(values.values()))
                    except (psycopg.IntegrityError, psycopg.DataError, psycopg.ProgrammingError) as exc:
                        raise BadCopy(table, " ".join(str(exc).split())) from exc
                written[table] = len(tables.get(table, ()))
            for table in IDENTITIES:
                connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                    f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")
        return written
