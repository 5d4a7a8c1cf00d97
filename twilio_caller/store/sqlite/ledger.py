"""The safety ledger in SQLite: the gate's reservation (usage counted, decision audited and
the call recorded in one IMMEDIATE transaction, so no burst of threads or processes can pass
a cap), the day's usage, and the approval telephony re-checks before it dials."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime

from twilio_caller.store.ports import DayUsage, Reservation, Reserved, Row, Usage, V
from twilio_caller.store.sqlite._common import LIVE_CALLS, LIVE_STATUSES, stamp, utc_stamp
from twilio_caller.store.sqlite.calls import insert_call
from twilio_caller.store.sqlite.database import Database


class SqliteLedger:
    def __init__(self, database: Database) -> None:
        self._db = database

    def reserve(self, reservation: Reservation, decide: Callable[[Usage], V]) -> tuple[V, Reserved]:
        with self._db.transaction() as connection:
            verdict = decide(_usage(connection, reservation))
            call = reservation.call if verdict.allowed else None
            if call is not None:
                insert_call(connection, call, reservation.now)
            cursor = connection.execute(
                "INSERT INTO safety_decisions (call_id, tool, to_number, contact_id, allowed, rule,"
                " reason, message, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (call.id if call else None, reservation.tool, reservation.to_number, reservation.contact_id,
                 int(verdict.allowed), verdict.rule, verdict.reason, reservation.message,
                 stamp(reservation.now)),
            )
        return verdict, Reserved(cursor.lastrowid or 0, call.id if call else None)

    def day_usage(self, day: tuple[datetime, datetime]) -> DayUsage:
        rows = self._db.query(
            "SELECT contact_id, COUNT(*) AS n FROM calls WHERE placed = 1 AND created_at >= ?"
            " AND created_at < ? GROUP BY contact_id", (utc_stamp(day[0]), utc_stamp(day[1])))
        live = self._db.query(f"SELECT COUNT(*) FROM calls WHERE {LIVE_CALLS}", LIVE_STATUSES)[0][0]  # noqa: S608
        per_contact = {row["contact_id"]: row["n"] for row in rows if row["contact_id"] is not None}
        return DayUsage(calls=sum(per_contact.values()), live_calls=live, per_contact=per_contact)

    def approval_holds(self, decision_id: int, call_id: str, to_number: str) -> bool:
        rows = self._db.query(
            "SELECT d.allowed, d.to_number, c.twilio_sid FROM safety_decisions d"
            " JOIN calls c ON c.id = d.call_id WHERE d.id = ? AND d.call_id = ?",
            (decision_id, call_id),
        )
        return bool(rows) and bool(rows[0]["allowed"]) and rows[0]["to_number"] == to_number \
            and rows[0]["twilio_sid"] is None

    def decisions(self, limit: int) -> list[Row]:
        rows = self._db.query("SELECT * FROM safety_decisions ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(row) for row in rows]


def _usage(connection: sqlite3.Connection, reservation: Reservation) -> Usage:
    start, end = (utc_stamp(bound) for bound in reservation.day)
    live_calls = connection.execute(f"SELECT COUNT(*) FROM calls WHERE {LIVE_CALLS}", LIVE_STATUSES).fetchone()[0]  # noqa: S608
    today = "placed = 1 AND created_at >= ? AND created_at < ?"
    calls_today = connection.execute(f"SELECT COUNT(*) FROM calls WHERE {today}", (start, end)).fetchone()[0]  # noqa: S608
    target, value = (("contact_id", reservation.contact_id) if reservation.contact_id is not None
                     else ("to_number", reservation.to_number))
    contact_today, last = connection.execute(
        f"SELECT SUM(created_at >= ? AND created_at < ?), MAX(created_at) FROM calls"  # noqa: S608
        f" WHERE placed = 1 AND {target} = ?",
        (start, end, value),
    ).fetchone()
    return Usage(
        live_calls=live_calls,
        calls_today=calls_today,
        contact_calls_today=contact_today or 0,
        last_contact_call_at=datetime.fromisoformat(last) if last else None,
    )
