"""store export / import on PostgreSQL (`store/sql/tables.py`): the tables are locked for the
load, columns come from information_schema (less the insertion-order `seq`), and identity
sequences continue after the highest id loaded."""

from __future__ import annotations

from typing import Any

import psycopg

from twilio_caller.store.sql.tables import SqlTables

IDENTITIES = ("contacts", "turns", "events", "safety_decisions")


class PgTables(SqlTables):
    bad_row = (psycopg.IntegrityError, psycopg.DataError, psycopg.ProgrammingError)

    def _hold(self, connection: Any, table: str) -> None:
        connection.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")

    def _columns(self, connection: Any, table: str) -> set[str]:
        return {column["column_name"] for column in connection.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?", (table,))} - {"seq"}

    def _loaded(self, connection: Any) -> None:
        for table in IDENTITIES:
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")
