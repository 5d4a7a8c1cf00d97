"""A store's data as plain rows, and loading such rows into an empty one (store export and
import), for both stores. Column names from a copy are checked against the schema before any
SQL uses them. A backend says how it reads its columns, what a bad row raises, and what it
does around a load (`_hold`, `_loaded`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from twilio_caller.store.ports import TABLES, BadCopy, NotEmpty
from twilio_caller.store.sql.dialect import SqlDatabase, marks, plain


class SqlTables(ABC):
    bad_row: tuple[type[Exception], ...] = ()
    """The driver's errors that mean a row does not fit (reported as BadCopy)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        order = {"calls": f"created_at, {self._db.dialect.insertion_order}", "call_state": "call_id",
                 "call_answers": "call_id, request_key"}
        return {table: [plain(row) for row in self._db.query(
            f"SELECT * FROM {table} ORDER BY {order.get(table, 'id')}")]  # noqa: S608 - names from TABLES
            for table in TABLES}

    def load(self, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
        with self._db.transaction() as connection:
            for table in TABLES:
                self._hold(connection, table)
                rows = int(connection.execute(f"SELECT COUNT(*) AS n FROM {table}").fetchone()["n"])  # noqa: S608
                if rows:
                    raise NotEmpty(table, rows)
            written = {}
            for table in TABLES:
                known = self._columns(connection, table)
                for values in tables.get(table, ()):
                    unknown = sorted(set(values) - known)
                    if unknown:
                        raise BadCopy(table, f"no column {unknown[0]!r}")
                    try:
                        connection.execute(
                            f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks(list(values))})",  # noqa: S608
                            list(values.values()))
                    except self.bad_row as exc:
                        raise BadCopy(table, " ".join(str(exc).split())) from exc
                written[table] = len(tables.get(table, ()))
            self._loaded(connection)
        return written

    def _hold(self, connection: Any, table: str) -> None:  # noqa: B027 (an optional hook: nothing by default)
        """Keep other writers out of `table` until the load ends (the transaction may already)."""

    @abstractmethod
    def _columns(self, connection: Any, table: str) -> set[str]:
        """The column names `table` has (a copy's names are checked against them): the backend's."""

    def _loaded(self, connection: Any) -> None:  # noqa: B027 (an optional hook: nothing by default)
        """What the store needs after rows with their ids were loaded."""
