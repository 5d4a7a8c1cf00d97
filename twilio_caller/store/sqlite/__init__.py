"""The SQLite store: one database file in the home (WAL mode), the only place that holds SQL.
`SqliteStore` opens (and migrates) it and carries one repository per concern."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from twilio_caller.store.sqlite.call_state import SqliteCallStates, SqliteLeases
from twilio_caller.store.sql.calls import SqlCalls
from twilio_caller.store.sqlite.database import Database, database_error
from twilio_caller.store.sql.ledger import SqlLedger
from twilio_caller.store.sql.read_back import SqlReadBack
from twilio_caller.store.sqlite.migrations import MIGRATIONS, Migration
from twilio_caller.store.sql.schedule import SqlSchedule
from twilio_caller.store.sqlite.tables import SqliteTables
from twilio_caller.store.sql.contacts import SqlContacts
from twilio_caller.store.sqlite.wakeups import LocalWakeups

__all__ = ["MIGRATIONS", "Migration", "SqliteStore", "database_error"]


class SqliteStore(Database):
    def __init__(self, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        super().__init__(path, migrations)
        self._contacts = SqlContacts(self)
        self._calls = SqlCalls(self)
        self._ledger = SqlLedger(self)
        self._call_states = SqliteCallStates(self)
        self._leases = SqliteLeases(self)
        self._tables = SqliteTables(self)
        self._wakeups = LocalWakeups()
        self._schedule = SqlSchedule(self)

    @property
    def contacts(self) -> SqlContacts:
        return self._contacts

    @property
    def calls(self) -> SqlCalls:
        return self._calls

    @property
    def ledger(self) -> SqlLedger:
        return self._ledger

    @property
    def call_states(self) -> SqliteCallStates:
        return self._call_states

    @property
    def leases(self) -> SqliteLeases:
        return self._leases

    @property
    def schedule(self) -> SqlSchedule:
        return self._schedule

    @property
    def tables(self) -> SqliteTables:
        return self._tables

    def reader(self) -> SqlReadBack:
        return SqlReadBack(self)

    @property
    def wakeups(self) -> LocalWakeups:
        return self._wakeups
