"""Call state and leases in SQLite: what differs from the shared repository
(`store/sql/call_state.py`) — a call's claim and the named leases, which also ask whether the
holder's process is alive (all run on this machine)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime

from twilio_caller.store.ports import LeaseHolder
from twilio_caller.store.sql.call_state import SqlCallStates, _upsert
from twilio_caller.store.sql.dialect import stamp
from twilio_caller.store.sqlite.database import Database


class SqliteCallStates(SqlCallStates):
    def claim(self, call_id: str, owner: str, lease_until: datetime, now: datetime,
              alive: Callable[[str], bool]) -> bool:
        with self._db.transaction() as connection:
            row = connection.execute(
                "SELECT owner, lease_until FROM call_state WHERE call_id = ?", (call_id,)).fetchone()
            if (row and row["owner"] not in (None, owner) and row["lease_until"]
                    and row["lease_until"] > stamp(now) and alive(row["owner"])):
                return False
            _upsert(connection, call_id, stamp(now), owner=owner, lease_until=stamp(lease_until))
        return True


class SqliteLeases:
    def __init__(self, database: Database) -> None:
        self._db = database

    def holder(self, name: str) -> LeaseHolder | None:
        rows = self._db.query("SELECT owner, pid, lease_until FROM server_lease WHERE name = ?", (name,))
        return _holder(rows[0]) if rows else None

    def acquire(self, name: str, owner: str, pid: int, lease_until: datetime, now: datetime,
                alive: Callable[[int], bool]) -> LeaseHolder | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                "SELECT owner, pid, lease_until FROM server_lease WHERE name = ?", (name,)).fetchone()
            if row and row["owner"] != owner and row["lease_until"] > stamp(now) and alive(row["pid"]):
                return _holder(row)
            connection.execute(
                "INSERT INTO server_lease (name, owner, pid, lease_until) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,"
                " lease_until = excluded.lease_until",
                (name, owner, pid, stamp(lease_until)),
            )
        return None

    def release(self, name: str, owner: str) -> None:
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM server_lease WHERE name = ? AND owner = ?", (name, owner))


def _holder(row: sqlite3.Row) -> LeaseHolder:
    return LeaseHolder(owner=row["owner"], pid=row["pid"], lease_until=datetime.fromisoformat(row["lease_until"]))
