"""Call state and the named leases, for both stores. Every read-then-write of one call's state
(or one lease) holds its lock (PostgreSQL's advisory lock; SQLite's IMMEDIATE transaction holds
the database's), so processes on one database take turns on it. Whether a holder's pid counts
is the dialect's `one_machine`: on SQLite a lease of a process that no longer runs is free; on
PostgreSQL the owner may run on another machine, and the lease time alone decides."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from twilio_caller.store.ports import Answer, CallStateRecord, Carried, LeaseHolder
from twilio_caller.store.sql.calls import ADD_TURN
from twilio_caller.store.sql.dialect import Lock, SqlDatabase, marks, stamp
from twilio_caller.store.sql.read_back import state_record


class SqlCallStates:
    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def load(self, call_id: str) -> CallStateRecord | None:
        rows = self._db.query("SELECT * FROM call_state WHERE call_id = ?", (call_id,))
        if not rows:
            return None
        return state_record(rows[0])

    def answer(self, call_id: str, key: str) -> str | None:
        rows = self._db.query(
            "SELECT twiml FROM call_answers WHERE call_id = ? AND request_key = ?", (call_id, key))
        return str(rows[0]["twiml"]) if rows else None

    def commit(self, call_id: str, answer: Answer, now: datetime) -> str:
        at = stamp(now)
        with self._db.transaction() as connection:
            self._db.dialect.lock(connection, Lock.CALL, call_id)
            given = connection.execute(
                "SELECT twiml FROM call_answers WHERE call_id = ? AND request_key = ?", (call_id, answer.key)
            ).fetchone()
            if given is not None:
                return str(given["twiml"])
            for speaker, text, confidence, dedupe_key in answer.lines:
                connection.execute(ADD_TURN, (call_id, speaker, text, confidence, at, dedupe_key))
            connection.execute(
                "INSERT INTO call_answers (call_id, request_key, twiml, at) VALUES (?, ?, ?, ?)",
                (call_id, answer.key, answer.twiml, at),
            )
            pending = _pending(connection, call_id)[answer.delivered:]
            _upsert(connection, call_id, at, gather_seq=answer.gather_seq, hold_seq=answer.hold_seq,
                    reprompts_left=answer.reprompts_left, last_prompt=json.dumps(list(answer.last_prompt)),
                    pending_actions=json.dumps(pending), **_carried(answer.carried))
        return answer.twiml

    def start(self, call_id: str, owner: str, max_seconds: int, lease_until: datetime, now: datetime, *,
              async_detection: bool = False) -> None:
        with self._db.transaction() as connection:
            self._db.dialect.lock(connection, Lock.CALL, call_id)
            _upsert(connection, call_id, stamp(now), owner=owner, max_seconds=max_seconds,
                    lease_until=stamp(lease_until), steered_at=_instant(now), async_detection=int(async_detection))

    def issue_hold(self, call_id: str, now: datetime) -> int:
        with self._db.transaction() as connection:
            self._db.dialect.lock(connection, Lock.CALL, call_id)
            row = connection.execute("SELECT hold_seq FROM call_state WHERE call_id = ?", (call_id,)).fetchone()
            number = int(row["hold_seq"] if row else 0) + 1
            _upsert(connection, call_id, stamp(now), hold_seq=number)
        return number

    def queue_action(self, call_id: str, action: Mapping[str, Any], now: datetime) -> None:
        with self._db.transaction() as connection:
            self._db.dialect.lock(connection, Lock.CALL, call_id)
            pending = [*_pending(connection, call_id), dict(action)]
            _upsert(connection, call_id, stamp(now), pending_actions=json.dumps(pending), steered_at=_instant(now))

    def steer(self, call_id: str, now: datetime) -> None:
        with self._db.transaction() as connection:
            _upsert(connection, call_id, stamp(now), steered_at=_instant(now))

    def drop_actions(self, call_id: str, now: datetime) -> None:
        with self._db.transaction() as connection:
            self._db.dialect.lock(connection, Lock.CALL, call_id)
            _upsert(connection, call_id, stamp(now), pending_actions="[]")

    def claim(self, call_id: str, owner: str, lease_until: datetime, now: datetime,
              alive: Callable[[str], bool]) -> bool:
        with self._db.transaction() as connection:
            self._db.dialect.lock(connection, Lock.CALL, call_id)
            row = connection.execute(
                "SELECT owner, lease_until FROM call_state WHERE call_id = ?", (call_id,)).fetchone()
            if (row and row["owner"] not in (None, owner) and row["lease_until"] and row["lease_until"] > stamp(now)
                    and (not self._db.dialect.one_machine or alive(row["owner"]))):
                return False
            _upsert(connection, call_id, stamp(now), owner=owner, lease_until=stamp(lease_until))
        return True

    def renew(self, call_ids: Sequence[str], owner: str, lease_until: datetime) -> None:
        if not call_ids:
            return
        with self._db.transaction() as connection:
            connection.execute(
                f"UPDATE call_state SET lease_until = ? WHERE owner = ? AND call_id IN ({marks(call_ids)})",  # noqa: S608
                [stamp(lease_until), owner, *call_ids],
            )

    def release(self, call_ids: Sequence[str], owner: str) -> None:
        if not call_ids:
            return
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE call_state SET owner = NULL, lease_until = NULL"  # noqa: S608
                f" WHERE owner = ? AND call_id IN ({marks(call_ids)})",
                [owner, *call_ids],
            )


class SqlLeases:
    """Named leases: a home's one server, an instance id of a shared deployment."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def holder(self, name: str) -> LeaseHolder | None:
        rows = self._db.query("SELECT owner, pid, lease_until FROM server_lease WHERE name = ?", (name,))
        return _holder(rows[0]) if rows else None

    def acquire(self, name: str, owner: str, pid: int, lease_until: datetime, now: datetime,
                alive: Callable[[int], bool]) -> LeaseHolder | None:
        with self._db.transaction() as connection:
            self._db.dialect.lock(connection, Lock.LEASE, name)
            row = connection.execute(
                "SELECT owner, pid, lease_until FROM server_lease WHERE name = ?", (name,)).fetchone()
            if (row and row["owner"] != owner and row["lease_until"] > stamp(now)
                    and (not self._db.dialect.one_machine or alive(row["pid"]))):
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


def _holder(row: Any) -> LeaseHolder:
    return LeaseHolder(owner=row["owner"], pid=row["pid"], lease_until=datetime.fromisoformat(row["lease_until"]))


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _instant(moment: datetime | None) -> str | None:
    """A moment a budget is measured from: to the millisecond (a hold lasts a few seconds)."""
    return moment.isoformat(timespec="milliseconds") if moment else None


def _carried(carried: Carried | None) -> dict[str, Any]:
    """The columns of what an answer carries to the next instance (none when not given; a
    moment not known is left as it is)."""
    if carried is None:
        return {}
    columns = {
        "steered_at": _instant(carried.steered_at), "quiet_since": _instant(carried.quiet_since),
        "acknowledged": int(carried.acknowledged), "acknowledgements_said": carried.acknowledgements_said,
        "goodbye_pending": int(carried.goodbye_pending),
    }
    return {column: value for column, value in columns.items() if value is not None}


def _pending(connection: Any, call_id: str) -> list[dict[str, Any]]:
    row = connection.execute("SELECT pending_actions FROM call_state WHERE call_id = ?", (call_id,)).fetchone()
    return list(json.loads(row["pending_actions"])) if row else []


def _upsert(connection: Any, call_id: str, at: str, **fields: Any) -> None:
    columns = ["call_id", "updated_at", *fields]
    updates = ", ".join(f"{column} = excluded.{column}" for column in ["updated_at", *fields])
    connection.execute(
        f"INSERT INTO call_state ({', '.join(columns)}) VALUES ({marks(columns)})"  # noqa: S608
        f" ON CONFLICT (call_id) DO UPDATE SET {updates}",
        [call_id, at, *fields.values()],
    )
