"""The call log in PostgreSQL: calls, their transcript lines and their events."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from twilio_caller.call_status import TERMINAL, status_rank
from twilio_caller.store.ports import CallFilter, Line, NewCall, Row
from twilio_caller.store.postgres._common import (
    LIVE_CALLS, LIVE_STATUSES, TERMINAL_STATUSES, marks, row, stamp, utc_stamp,
)
from twilio_caller.store.postgres.database import Connection, PgDatabase

_ADD_TURN = ("INSERT INTO turns (call_id, speaker, text, confidence, at, dedupe_key)"
             " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING")


class PgCalls:
    def __init__(self, database: PgDatabase) -> None:
        self._db = database

    def insert(self, call: NewCall, now: datetime) -> None:
        with self._db.transaction() as connection:
            insert_call(connection, call, now)

    def get(self, call_id: str) -> Row | None:
        rows = self._db.query("SELECT * FROM calls WHERE id = %s", (call_id,))
        return row(rows[0]) if rows else None

    def find(self, where: CallFilter, limit: int) -> list[Row]:
        clauses, parameters = _clauses(where)
        sql = f"SELECT * FROM calls {'WHERE ' + ' AND '.join(clauses) if clauses else ''}"  # noqa: S608
        rows = self._db.query(sql + " ORDER BY created_at DESC, seq DESC LIMIT %s", [*parameters, limit])
        return [row(found) for found in rows]

    def live(self) -> list[Row]:
        rows = self._db.query(f"SELECT * FROM calls WHERE {LIVE_CALLS} ORDER BY created_at, seq", LIVE_STATUSES)  # noqa: S608
        return [row(found) for found in rows]

    def latest_to(self, number: str, since: datetime) -> str | None:
        rows = self._db.query(
            "SELECT id FROM calls WHERE to_number = %s AND created_at >= %s"
            " ORDER BY created_at DESC, seq DESC LIMIT 1",
            (number, utc_stamp(since)),
        )
        return str(rows[0]["id"]) if rows else None

    def turns(self, call_id: str) -> list[Row]:
        return list(self._db.query(
            "SELECT speaker, text, confidence, at FROM turns WHERE call_id = %s ORDER BY id", (call_id,)))

    def has_turn(self, call_id: str, dedupe_key: str) -> bool:
        return bool(self._db.query(
            "SELECT 1 FROM turns WHERE call_id = %s AND dedupe_key = %s", (call_id, dedupe_key)))

    def event_payloads(self, call_id: str, kind: str) -> list[dict[str, Any]]:
        rows = self._db.query(
            "SELECT payload FROM events WHERE call_id = %s AND kind = %s ORDER BY id", (call_id, kind))
        return [dict(json.loads(found["payload"])) for found in rows]

    def placed(self, call_id: str, provider_sid: str, status: str) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE calls SET twilio_sid = %s, status = CASE WHEN status = 'pending'"
                " THEN %s ELSE status END WHERE id = %s",
                (provider_sid, status, call_id),
            )

    def not_placed(self, call_id: str, error: str, now: datetime) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE calls SET status = 'failed', placed = 0, error = %s, ended_at = %s WHERE id = %s",
                (error, stamp(now), call_id),
            )

    def add_turns(self, call_id: str, lines: Sequence[Line], now: datetime) -> list[bool]:
        at = stamp(now)
        with self._db.transaction() as connection:
            return [
                connection.execute(_ADD_TURN, (call_id, speaker, text, confidence, at, dedupe_key)).rowcount == 1
                for speaker, text, confidence, dedupe_key in lines
            ]

    def add_event(self, call_id: str, kind: str, status: str | None, sequence: int | None,
                  payload: Mapping[str, Any], now: datetime, *, content_key: str | None) -> bool:
        with self._db.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO events (call_id, kind, status, sequence_number, payload, at, content_key)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (call_id, kind, status, sequence, json.dumps(dict(payload)), stamp(now), content_key),
            )
            return cursor.rowcount == 1

    def advance(self, call_id: str, status: str, fields: Mapping[str, Any], now: datetime) -> str:
        with self._db.transaction() as connection:
            current = connection.execute(
                "SELECT status FROM calls WHERE id = %s FOR UPDATE", (call_id,)).fetchone()
            if current is None:
                return status
            now_status = current["status"]
            sets = {key: value for key, value in fields.items() if value is not None}
            if status_rank(status) > status_rank(now_status):
                now_status = status
                if status in TERMINAL:
                    sets["ended_at"] = stamp(now)
            sets = {"status": now_status, **sets}
            assignments = ", ".join(f"{column} = %s" for column in sets)
            connection.execute(f"UPDATE calls SET {assignments} WHERE id = %s", [*sets.values(), call_id])  # noqa: S608
            return str(now_status)

    def purge(self, where: CallFilter) -> dict[str, int]:
        clauses, parameters = _clauses(where)
        calls = f"SELECT id FROM calls WHERE {' AND '.join(clauses) or 'TRUE'}"  # noqa: S608
        with self._db.transaction() as connection:
            turns = connection.execute(f"DELETE FROM turns WHERE call_id IN ({calls})", parameters).rowcount  # noqa: S608
            events = connection.execute(f"DELETE FROM events WHERE call_id IN ({calls})", parameters).rowcount  # noqa: S608
        return {"turns": turns, "events": events}


def insert_call(connection: Connection, call: NewCall, now: datetime) -> None:
    """Record a call, status pending (also inside the safety ledger's reservation)."""
    values = {**asdict(call), "keep_open": int(call.keep_open), "status": "pending", "created_at": stamp(now)}
    connection.execute(
        f"INSERT INTO calls ({', '.join(values)}) VALUES ({marks(list(values))})", list(values.values())  # noqa: S608
    )


def _clauses(where: CallFilter) -> tuple[list[str], list[object]]:
    """SQL conditions for `where`. A removed contact's calls have contact_id NULL and are
    found by the name they kept."""
    clauses: list[str] = []
    parameters: list[object] = []
    if where.contact_id is not None:
        clauses.append("contact_id = %s")
        parameters.append(where.contact_id)
    elif where.removed_contact is not None:
        clauses.append("contact_id IS NULL AND LOWER(to_name) = LOWER(%s)")
        parameters.append(where.removed_contact)
    if where.status is not None:
        clauses.append("status = %s")
        parameters.append(where.status)
    if where.ended_only:
        clauses.append(f"status IN ({marks(TERMINAL_STATUSES)})")
        parameters += TERMINAL_STATUSES
    if where.since is not None:
        clauses.append("created_at >= %s")
        parameters.append(utc_stamp(where.since))
    if where.before is not None:
        clauses.append("created_at < %s")
        parameters.append(utc_stamp(where.before))
    return clauses, parameters
