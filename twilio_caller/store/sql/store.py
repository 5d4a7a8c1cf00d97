"""The repositories a SQL store carries, written once for both backends: each store class is
its backend's database and this, given what is its own (how its tables are copied, how other
processes are woken)."""

from __future__ import annotations

from twilio_caller.store.ports import TableCopy, Wakeups
from twilio_caller.store.sql.call_state import SqlCallStates, SqlLeases
from twilio_caller.store.sql.calls import SqlCalls
from twilio_caller.store.sql.contacts import SqlContacts
from twilio_caller.store.sql.dialect import SqlDatabase
from twilio_caller.store.sql.ledger import SqlLedger
from twilio_caller.store.sql.schedule import SqlSchedule


class SqlRepositories:
    def __init__(self, database: SqlDatabase, tables: TableCopy, wakeups: Wakeups) -> None:
        self._contacts = SqlContacts(database)
        self._calls = SqlCalls(database)
        self._ledger = SqlLedger(database)
        self._call_states = SqlCallStates(database)
        self._leases = SqlLeases(database)
        self._schedule = SqlSchedule(database)
        self._tables = tables
        self._wakeups = wakeups

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
    def call_states(self) -> SqlCallStates:
        return self._call_states

    @property
    def leases(self) -> SqlLeases:
        return self._leases

    @property
    def schedule(self) -> SqlSchedule:
        return self._schedule

    @property
    def tables(self) -> TableCopy:
        return self._tables

    @property
    def wakeups(self) -> Wakeups:
        return self._wakeups
