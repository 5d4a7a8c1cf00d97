"""The safety ledger, for both stores: the gate's reservation (usage counted, decision audited
and the call recorded in one transaction), the day's usage, and the approval telephony
re-checks before it dials. No burst of threads, processes or server instances can interleave
between counting the usage and recording the call: on SQLite the transaction is IMMEDIATE (it
holds the database's write lock from its start); on PostgreSQL it first takes two
transaction-level advisory locks — the account's, then the contact's (by contact id, else the
bare number), always in that order (no deadlock). Caps, the minimum gap and the concurrency
limit hold exactly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from twilio_caller.store.ports import DayUsage, Reservation, Reserved, Row, Usage, V
from twilio_caller.store.sql.calls import insert_call
from twilio_caller.store.sql.dialect import LIVE_CALLS, LIVE_STATUSES, Lock, SqlDatabase, stamp, utc_stamp


class SqlLedger:
    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def reserve(self, reservation: Reservation, decide: Callable[[Usage], V]) -> tuple[V, Reserved]:
        with self._db.transaction() as connection:
            self._db.dialect.lock(connection, Lock.ACCOUNT, None)
            self._db.dialect.lock(connection, Lock.CONTACT, _whom(reservation))
            verdict = decide(_usage(connection, reservation))
            call = reservation.call if verdict.allowed else None
            if call is not None:
                insert_call(connection, call, reservation.now)
            decided = connection.execute(
                "INSERT INTO safety_decisions (call_id, tool, to_number, contact_id, allowed, rule,"
                " reason, message, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (call.id if call else None, reservation.tool, reservation.to_number, reservation.contact_id,
                 int(verdict.allowed), verdict.rule, verdict.reason, reservation.message,
                 stamp(reservation.now)),
            ).fetchone()
        decision_id = int(decided["id"]) if decided else 0
        return verdict, Reserved(decision_id, call.id if call else None)

    def day_usage(self, day: tuple[datetime, datetime]) -> DayUsage:
        rows = self._db.query(
            "SELECT contact_id, COUNT(*) AS n FROM calls WHERE placed = 1 AND created_at >= ?"
            " AND created_at < ? GROUP BY contact_id", (utc_stamp(day[0]), utc_stamp(day[1])))
        live = self._db.query(f"SELECT COUNT(*) AS n FROM calls WHERE {LIVE_CALLS}", LIVE_STATUSES)[0]["n"]  # noqa: S608
        per_contact = {int(row["contact_id"]): int(row["n"]) for row in rows if row["contact_id"] is not None}
        return DayUsage(calls=sum(per_contact.values()), live_calls=int(live), per_contact=per_contact)

    def approval_holds(self, decision_id: int, call_id: str, to_number: str) -> bool:
        rows = self._db.query(
            "SELECT d.allowed, d.to_number, c.twilio_sid FROM safety_decisions d"
            " JOIN calls c ON c.id = d.call_id WHERE d.id = ? AND d.call_id = ?",
            (decision_id, call_id),
        )
        return bool(rows) and bool(rows[0]["allowed"]) and rows[0]["to_number"] == to_number \
            and rows[0]["twilio_sid"] is None

    def decisions(self, limit: int) -> list[Row]:
        return [dict(row) for row in self._db.query("SELECT * FROM safety_decisions ORDER BY id DESC LIMIT ?", (limit,))]


def _whom(reservation: Reservation) -> str:
    if reservation.contact_id is not None:
        return f"contact:{reservation.contact_id}"
    return f"number:{reservation.to_number}"


def _usage(connection: Any, reservation: Reservation) -> Usage:
    start, end = (utc_stamp(bound) for bound in reservation.day)
    live_calls = _count(connection, f"SELECT COUNT(*) AS n FROM calls WHERE {LIVE_CALLS}", LIVE_STATUSES)  # noqa: S608
    calls_today = _count(connection, "SELECT COUNT(*) AS n FROM calls WHERE placed = 1"
                                     " AND created_at >= ? AND created_at < ?", (start, end))
    target, value = (("contact_id", reservation.contact_id) if reservation.contact_id is not None
                     else ("to_number", reservation.to_number))
    found = connection.execute(
        "SELECT COUNT(*) FILTER (WHERE created_at >= ? AND created_at < ?) AS today,"  # noqa: S608
        f" MAX(created_at) AS last FROM calls WHERE placed = 1 AND {target} = ?",
        (start, end, value),
    ).fetchone()
    last = found["last"] if found else None
    return Usage(
        live_calls=live_calls,
        calls_today=calls_today,
        contact_calls_today=int(found["today"]) if found else 0,
        last_contact_call_at=datetime.fromisoformat(last) if last else None,
    )


def _count(connection: Any, sql: str, parameters: tuple[object, ...]) -> int:
    found = connection.execute(sql, parameters).fetchone()
    return int(found["n"]) if found else 0
