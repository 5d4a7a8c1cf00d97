"""The PostgreSQL store (`store.url: postgresql://…` or TWILIO_CALLER_DATABASE_URL): the same
repositories and the same named migrations as the SQLite store, on one database several
processes share. Needs psycopg 3 (the `[postgres]` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twilio_caller.store.postgres.call_state import PgCallStates, PgLeases
from twilio_caller.store.sql.calls import SqlCalls
from twilio_caller.store.postgres.database import PgDatabase, connection_error, redact
from twilio_caller.store.sql.ledger import SqlLedger
from twilio_caller.store.postgres.read_back import PgReader
from twilio_caller.store.postgres.migrations import MIGRATIONS
from twilio_caller.store.sql.schedule import SqlSchedule
from twilio_caller.store.postgres.tables import PgTables
from twilio_caller.store.sqlite.migrations import Migration
from twilio_caller.store.sql.contacts import SqlContacts
from twilio_caller.store.postgres.wakeups import PgWakeups

__all__ = ["MIGRATIONS", "PgDatabase", "PostgresStore", "connection_error", "redact"]


class PostgresStore(PgDatabase):
    def __init__(self, url: str, migrations: Sequence[Migration] = MIGRATIONS, **pool: Any) -> None:
        """`pool`: `pool_size`, `pool_timeout` (PgDatabase)."""
        super().__init__(url, migrations, **pool)
        self._contacts = SqlContacts(self)
        self._calls = SqlCalls(self)
        self._ledger = SqlLedger(self)
        self._call_states = PgCallStates(self)
        self._leases = PgLeases(self)
        self._tables = PgTables(self)
        self._wakeups = PgWakeups(self)
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
    def call_states(self) -> PgCallStates:
        return self._call_states

    @property
    def leases(self) -> PgLeases:
        return self._leases

    @property
    def schedule(self) -> SqlSchedule:
        return self._schedule

    @property
    def tables(self) -> PgTables:
        return self._tables

    def reader(self) -> PgReader:
        return PgReader(self)

    @property
    def wakeups(self) -> PgWakeups:
        return self._wakeups
