"""Call state and leases in PostgreSQL: what differs from the shared repository
(`store/sql/call_state.py`) — a call's claim and the named leases, decided by the lease time
alone (the owner may run on another machine). Each holds its advisory lock (the call's, the
lease name's), so processes on one database take turns on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from twilio_caller.store.ports import LeaseHolder
from twilio_caller.store.postgres.database import LOCK_CALL, LOCK_LEASE, PgDatabase, lock
from twilio_caller.store.sql.call_state import SqlCallStates, _upsert
from twilio_caller.store.sql.dialect import stamp


class PgCallStates(SqlCallStates):
    def claim(self, call_id: str, owner: str, lease_until: datetime, now: datetime,
              alive: Callable[[str], bool]) -> bool:
        with self._db.transaction() as connection:
            lock(connection, LOCK_CALL, call_id)
            row = connection.execute(
                "SELECT owner, lease_until FROM call_state WHERE call_id = %s", (call_id,)).fetchone()
            if row and row["owner"] not in (None, owner) and row["lease_until"] and row["lease_until"] > stamp(now):
                return False  # the lease time alone decides: its owner may run on another machine
            _upsert(connection, call_id, stamp(now), owner=owner, lease_until=stamp(lease_until))
        return True


class PgLeases:
    def __init__(self, database: PgDatabase) -> None:
        self._db = database

    def holder(self, name: str) -> LeaseHolder | None:
        rows = self._db.query("SELECT owner, pid, lease_until FROM server_lease WHERE name = %s", (name,))
        return _holder(rows[0]) if rows else None

    def acquire(self, name: str, owner: str, pid: int, lease_until: datetime, now: datetime,
                alive: Callable[[int], bool]) -> LeaseHolder | None:
        with self._db.transaction() as connection:
            lock(connection, LOCK_LEASE, name)
            row = connection.execute(
                "SELECT owner, pid, lease_until FROM server_lease WHERE name = %s", (name,)).fetchone()
            if row and row["owner"] != owner and row["lease_until"] > stamp(now):
                return _holder(row)  # fresh: a pid means nothing on another machine
            connection.execute(
                "INSERT INTO server_lease (name, owner, pid, lease_until) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,"
                " lease_until = excluded.lease_until",
                (name, owner, pid, stamp(lease_until)),
            )
        return None

    def release(self, name: str, owner: str) -> None:
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM server_lease WHERE name = %s AND owner = %s", (name, owner))


def _holder(row: Mapping[str, Any]) -> LeaseHolder:
    return LeaseHolder(owner=row["owner"], pid=row["pid"], lease_until=datetime.fromisoformat(row["lease_until"]))
