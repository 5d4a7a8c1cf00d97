"""The SQLite store: one database file in the home (WAL mode), the only place that holds SQL.
`SqliteStore` opens (and migrates) it and carries one repository per concern."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from twilio_caller.store.sqlite.call_state import SqliteCallStates, SqliteLeases
from twilio_caller.store.sqlite.calls import SqliteCalls
from twilio_caller.store.sqlite.contacts import SqliteContacts
from twilio_caller.store.sqlite.database import Database, database_error
from twilio_caller.store.sqlite.ledger import SqliteLedger
from twilio_caller.store.sqlite.migrations import MIGRATIONS, Migration
from twilio_caller.store.sqlite.schedule import SqliteSchedule
from twilio_caller.store.sqlite.tables import SqliteTables
from twilio_caller.store.sqlite.wakeups import LocalWakeups

__all__ = ["MIGRATIONS", "Migration", "SqliteStore", "database_error"]


class SqliteStore(Database):
    def __init__(self, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        super().__init__(path, migrations)
        self._contacts = SqliteContacts(self)
        self._calls = SqliteCalls(self)
        self._ledger = SqliteLedger(self)
        self._call_states = SqliteCallStates(self)
        self._leases = SqliteLeases(self)
        self._tables = SqliteTables(self)
        self._wakeups = LocalWakeups()
        self._schedule = SqliteSchedule(self)

    @property
    def contacts(self) -> SqliteContacts:
        return self._contacts

    @property
    def calls(self) -> SqliteCalls:
        return self._calls

    @property
    def ledger(self) -> SqliteLedger:
        return self._ledger

    @property
    def call_states(self) -> SqliteCallStates:
        return self._call_states

    @property
    def leases(self) -> SqliteLeases:
        return self._leases

    @property
    def schedule(self) -> SqliteSchedule:
        return self._schedule

    @property
    def tables(self) -> SqliteTables:
        return self._tables

    @property
    def wakeups(self) -> LocalWakeups:
        return self._wakeups
