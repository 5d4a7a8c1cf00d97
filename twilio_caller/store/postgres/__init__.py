"""The PostgreSQL store (`store.url: postgresql://…` or TWILIO_CALLER_DATABASE_URL): the same
repositories and the same named migrations as the SQLite store, on one database several
processes share. Needs psycopg 3 (the `[postgres]` extra)."""

from __future__ import annotations

from collections.abc import Sequence

from twilio_caller.store.postgres.call_state import PgCallStates, PgLeases
from twilio_caller.store.postgres.calls import PgCalls
from twilio_caller.store.postgres.contacts import PgContacts
from twilio_caller.store.postgres.database import PgDatabase, connection_error, redact
from twilio_caller.store.postgres.ledger import PgLedger
from twilio_caller.store.postgres.migrations import MIGRATIONS
from twilio_caller.store.postgres.schedule import PgSchedule
from twilio_caller.store.postgres.tables import PgTables
from twilio_caller.store.sqlite.migrations import Migration
from twilio_caller.store.postgres.wakeups import PgWakeups

__all__ = ["MIGRATIONS", "PostgresStore", "connection_error", "redact"]


class PostgresStore(PgDatabase):
    def __init__(self, url: str, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        super().__init__(url, migrations)
        self._contacts = PgContacts(self)
        self._calls = PgCalls(self)
        self._ledger = PgLedger(self)
        self._call_states = PgCallStates(self)
        self._leases = PgLeases(self)
        self._tables = PgTables(self)
        self._wakeups = PgWakeups(self)
        self._schedule = PgSchedule(self)

    @property
    def contacts(self) -> PgContacts:
        return self._contacts

    @property
    def calls(self) -> PgCalls:
        return self._calls

    @property
    def ledger(self) -> PgLedger:
        return self._ledger

    @property
    def call_states(self) -> PgCallStates:
        return self._call_states

    @property
    def leases(self) -> PgLeases:
        return self._leases

    @property
    def schedule(self) -> PgSchedule:
        return self._schedule

    @property
    def tables(self) -> PgTables:
        return self._tables

    @property
    def wakeups(self) -> PgWakeups:
        return self._wakeups
