"""The safety ledger in PostgreSQL. A reservation is one transaction that first takes two
transaction-level advisory locks — the account's, then the contact's (by contact id, else the
bare number) — so no burst of threads, processes or server instances on one database can
interleave between counting the usage and recording the call: caps, the minimum gap and the
concurrency limit hold exactly. Locks are always taken in that order (no deadlock)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from twilio_caller.store.ports import DayUsage, Reservation, Reserved, Row, Usage, V
from twilio_caller.store.postgres._common import LIVE_CALLS, LIVE_STATUSES, stamp, utc_stamp
from twilio_caller.store.postgres.calls import insert_call
from twilio_caller.store.postgres.database import LOCK_ACCOUNT, LOCK_CONTACT, Connection, PgDatabase, lock


class PgLedger:
    def __init__(self, database: PgDatabase) -> None:
        self._db = database

    def reserve(self, reservation: Reservation, decide: Callable[[Usage], V]) -> tuple[V, Reserved]:
        with self._db.transaction() as connection:
            lock(connection, LOCK_ACCOUNT)
            lock(connection, LOCK_CONTACT, _whom(reservation))
            verdict = decide(_usage(connection, reservation))
            call = reservation.call if verdict.allowed else None
            if call is not None:
                insert_call(connection, call, reservation.now)
            decided = connection.execute(
                "INSERT INTO safety_decisions (call_id, tool, to_number, contact_id, allowed, rule,"
                " reason, message, decided_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (call.id if call else None, reservation.tool, reservation.to_number, reservation.contact_id,
                 int(verdict.allowed), verdict.rule, verdict.reason, reservation.message,
                 stamp(reservation.now)),
            ).fetchone()
        decision_id = int(decided["id"]) if decided else 0
        return verdict, Reserved(decision_id, call.id if call else None)

    def day_usage(self, day: tuple[datetime, datetime]) -> DayUsage:
        rows = self._db.query(
            "SELECT contact_id, COUNT(*) AS n FROM calls WHERE placed = 1 AND created_at >= %s"
            " AND created_at < %s GROUP BY contact_id", (utc_stamp(day[0]), utc_stamp(day[1])))
        live = self._db.query(f"SELECT COUNT(*) AS n FROM calls WHERE {LIVE_CALLS}", LIVE_STATUSES)[0]["n"]  # noqa: S608
        per_contact = {int(row["contact_id"]): int(row["n"]) for row in rows if row["contact_id"] is not None}
        return DayUsage(calls=sum(per_contact.values()), live_calls=int(live), per_contact=per_contact)

    def approval_holds(self, decision_id: int, call_id: str, to_number: str) -> bool:
        rows = self._db.query(
            "SELECT d.allowed, d.to_number, c.twilio_sid FROM safety_decisions d"
            " JOIN calls c ON c.id = d.call_id WHERE d.id = %s AND d.call_id = %s",
            (decision_id, call_id),
        )
        return bool(rows) and bool(rows[0]["allowed"]) and rows[0]["to_number"] == to_number \
            and rows[0]["twilio_sid"] is None

    def decisions(self, limit: int) -> list[Row]:
        return list(self._db.query("SELECT * FROM safety_decisions ORDER BY id DESC LIMIT %s", (limit,)))


def _whom(reservation: Reservation) -> str:
    if reservation.contact_id is not None:
        return f"contact:{reservation.contact_id}"
    return f"number:{reservation.to_number}"


def _usage(connection: Connection, reservation: Reservation) -> Usage:
    start, end = (utc_stamp(bound) for bound in reservation.day)
    live_calls = _count(connection, f"SELECT COUNT(*) AS n FROM calls WHERE {LIVE_CALLS}", LIVE_STATUSES)  # noqa: S608
    calls_today = _count(connection, "SELECT COUNT(*) AS n FROM calls WHERE placed = 1"
                                     " AND created_at >= %s AND created_at < %s", (start, end))
    target, value = (("contact_id", reservation.contact_id) if reservation.contact_id is not None
                     else ("to_number", reservation.to_number))
    found = connection.execute(
        "SELECT COUNT(*) FILTER (WHERE created_at >= %s AND created_at < %s) AS today,"  # noqa: S608
        f" MAX(created_at) AS last FROM calls WHERE placed = 1 AND {target} = %s",
        (start, end, value),
    ).fetchone()
    last = found["last"] if found else None
    return Usage(
        live_calls=live_calls,
        calls_today=calls_today,
        contact_calls_today=int(found["today"]) if found else 0,
        last_contact_call_at=datetime.fromisoformat(last) if last else None,
    )


def _count(connection: Connection, sql: str, parameters: tuple[object, ...]) -> int:
    found = connection.execute(sql, parameters).fetchone()
    return int(found["n"]) if found else 0
