"""The call log, for both stores: calls, their transcript lines and their events."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from twilio_caller.call_status import TERMINAL, status_rank
from twilio_caller.store.ports import CallFilter, Line, NewCall, Row
from twilio_caller.store.sql.dialect import (
    LIVE_CALLS, LIVE_STATUSES, TERMINAL_STATUSES, SqlDatabase, marks, plain, stamp, utc_stamp,
)

ADD_TURN = ("INSERT INTO turns (call_id, speaker, text, confidence, at, dedupe_key)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")


class SqlCalls:
    def __init__(self, database: SqlDatabase) -> None:
        self._db = database
        self._order = database.dialect.insertion_order

    def insert(self, call: NewCall, now: datetime) -> None:
        with self._db.transaction() as connection:
            insert_call(connection, call, now)

    def get(self, call_id: str) -> Row | None:
        rows = self._db.query("SELECT * FROM calls WHERE id = ?", (call_id,))
        return plain(rows[0]) if rows else None

    def find(self, where: CallFilter, limit: int) -> list[Row]:
        clauses, parameters = _clauses(where)
        sql = f"SELECT * FROM calls {'WHERE ' + ' AND '.join(clauses) if clauses else ''}"  # noqa: S608
        rows = self._db.query(sql + f" ORDER BY created_at DESC, {self._order} DESC LIMIT ?", [*parameters, limit])
        return [plain(row) for row in rows]

    def live(self) -> list[Row]:
        rows = self._db.query(
            f"SELECT * FROM calls WHERE {LIVE_CALLS} ORDER BY created_at, {self._order}", LIVE_STATUSES)  # noqa: S608
        return [plain(row) for row in rows]

    def latest_to(self, number: str, since: datetime) -> str | None:
        rows = self._db.query(
            f"SELECT id FROM calls WHERE to_number = ? AND created_at >= ?"  # noqa: S608
            f" ORDER BY created_at DESC, {self._order} DESC LIMIT 1",
            (number, utc_stamp(since)),
        )
        return str(rows[0]["id"]) if rows else None

    def turns(self, call_id: str) -> list[Row]:
        rows = self._db.query(
            "SELECT speaker, text, confidence, at FROM turns WHERE call_id = ? ORDER BY id", (call_id,))
        return [dict(row) for row in rows]

    def has_turn(self, call_id: str, dedupe_key: str) -> bool:
        rows = self._db.query("SELECT 1 FROM turns WHERE call_id = ? AND dedupe_key = ?", (call_id, dedupe_key))
        return bool(rows)

    def event_payloads(self, call_id: str, kind: str) -> list[dict[str, Any]]:
        rows = self._db.query(
            "SELECT payload FROM events WHERE call_id = ? AND kind = ? ORDER BY id", (call_id, kind))
        return [dict(json.loads(row["payload"])) for row in rows]

    def placed(self, call_id: str, provider_sid: str, status: str) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE calls SET twilio_sid = ?, status = CASE WHEN status = 'pending'"
                " THEN ? ELSE status END WHERE id = ?",
                (provider_sid, status, call_id),
            )

    def not_placed(self, call_id: str, error: str, now: datetime) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE calls SET status = 'failed', placed = 0, error = ?, ended_at = ? WHERE id = ?",
                (error, stamp(now), call_id),
            )

    def add_turns(self, call_id: str, lines: Sequence[Line], now: datetime) -> list[bool]:
        at = stamp(now)
        with self._db.transaction() as connection:
            return [
                connection.execute(ADD_TURN, (call_id, speaker, text, confidence, at, dedupe_key)).rowcount == 1
                for speaker, text, confidence, dedupe_key in lines
            ]

    def add_event(self, call_id: str, kind: str, status: str | None, sequence: int | None,
                  payload: Mapping[str, Any], now: datetime, *, content_key: str | None) -> bool:
        with self._db.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO events (call_id, kind, status, sequence_number, payload, at, content_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (call_id, kind, status, sequence, json.dumps(dict(payload)), stamp(now), content_key),
            )
            return bool(cursor.rowcount == 1)

    def advance(self, call_id: str, status: str, fields: Mapping[str, Any], now: datetime) -> str:
        with self._db.transaction() as connection:
            current = connection.execute(
                f"SELECT status FROM calls WHERE id = ?{self._db.dialect.for_update}", (call_id,)).fetchone()  # noqa: S608
            if current is None:
                return status
            now_status = current["status"]
            sets = {key: value for key, value in fields.items() if value is not None}
            if status_rank(status) > status_rank(now_status):
                now_status = status
                if status in TERMINAL:
                    sets["ended_at"] = stamp(now)
            sets = {"status": now_status, **sets}
            assignments = ", ".join(f"{column} = ?" for column in sets)
            connection.execute(f"UPDATE calls SET {assignments} WHERE id = ?", [*sets.values(), call_id])  # noqa: S608
            return str(now_status)

    def purge(self, where: CallFilter) -> dict[str, int]:
        clauses, parameters = _clauses(where)
        calls = f"SELECT id FROM calls WHERE {' AND '.join(clauses) or 'TRUE'}"  # noqa: S608
        with self._db.transaction() as connection:
            turns = connection.execute(f"DELETE FROM turns WHERE call_id IN ({calls})", parameters).rowcount  # noqa: S608
            events = connection.execute(f"DELETE FROM events WHERE call_id IN ({calls})", parameters).rowcount  # noqa: S608
        return {"turns": turns, "events": events}


def insert_call(connection: Any, call: NewCall, now: datetime) -> None:
    """Record a call, status pending (also inside the safety ledger's reservation)."""
    row = {**asdict(call), "keep_open": int(call.keep_open), "status": "pending", "created_at": stamp(now)}
    connection.execute(
        f"INSERT INTO calls ({', '.join(row)}) VALUES ({marks(list(row))})", list(row.values())  # noqa: S608
    )


def _clauses(where: CallFilter) -> tuple[list[str], list[object]]:
    """SQL conditions for `where`. A removed contact's calls have contact_id NULL and are
    found by the name they kept."""
    clauses: list[str] = []
    parameters: list[object] = []
    if where.contact_id is not None:
        clauses.append("contact_id = ?")
        parameters.append(where.contact_id)
    elif where.removed_contact is not None:
        clauses.append("contact_id IS NULL AND LOWER(to_name) = LOWER(?)")
        parameters.append(where.removed_contact)
    if where.status is not None:
        clauses.append("status = ?")
        parameters.append(where.status)
    if where.ended_only:
        clauses.append(f"status IN ({marks(TERMINAL_STATUSES)})")
        parameters += TERMINAL_STATUSES
    if where.since is not None:
        clauses.append("created_at >= ?")
        parameters.append(utc_stamp(where.since))
    if where.before is not None:
        clauses.append("created_at < ?")
        parameters.append(utc_stamp(where.before))
    return clauses, parameters
