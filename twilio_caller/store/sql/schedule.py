"""Scheduled calls, for both stores (migration 0003_scheduled_calls)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from twilio_caller.store.ports import NewScheduled, Row
from twilio_caller.store.sql.dialect import SqlDatabase, marks, stamp, utc_stamp

_JSON = ("arguments", "retry_on", "call_ids")
_TIMES = ("due_at", "claimed_at")


class SqlSchedule:
    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def add(self, item: NewScheduled, now: datetime) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "INSERT INTO scheduled_calls (id, arguments, to_name, to_number, due_at, retry_on,"
                " max_attempts, spacing_minutes, when_allowed, state, detail, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, ?, ?)",
                (item.id, json.dumps(dict(item.arguments)), item.to_name, item.to_number,
                 utc_stamp(item.due_at), json.dumps(list(item.retry_on)), item.max_attempts,
                 item.spacing_minutes, int(item.when_allowed), item.detail, stamp(now), stamp(now)),
            )

    def get(self, scheduled_id: str) -> Row | None:
        rows = self._db.query("SELECT * FROM scheduled_calls WHERE id = ?", (scheduled_id,))
        return _row(rows[0]) if rows else None

    def in_states(self, states: Sequence[str]) -> list[Row]:
        where = f" WHERE state IN ({marks(states)})" if states else ""
        rows = self._db.query(f"SELECT * FROM scheduled_calls{where} ORDER BY due_at, id", list(states))  # noqa: S608
        return [_row(row) for row in rows]

    def due(self, now: datetime) -> list[Row]:
        rows = self._db.query(
            "SELECT * FROM scheduled_calls WHERE state = 'scheduled' AND due_at <= ? ORDER BY due_at, id",
            (utc_stamp(now),),
        )
        return [_row(row) for row in rows]

    def count(self, states: Sequence[str]) -> int:
        rows = self._db.query(
            f"SELECT COUNT(*) AS n FROM scheduled_calls WHERE state IN ({marks(states)})", list(states))  # noqa: S608
        return int(rows[0]["n"])

    def transition(self, scheduled_id: str, from_states: Sequence[str], values: Mapping[str, Any],
                   now: datetime) -> bool:
        columns = {key: utc_stamp(value) if isinstance(value, datetime) else value for key, value in values.items()}
        columns["updated_at"] = stamp(now)
        assignments = ", ".join(f"{column} = ?" for column in columns)
        with self._db.transaction() as connection:
            cursor = connection.execute(
                f"UPDATE scheduled_calls SET {assignments} WHERE id = ? AND state IN ({marks(from_states)})",  # noqa: S608
                (*columns.values(), scheduled_id, *from_states),
            )
        return bool(cursor.rowcount == 1)

    def add_attempt(self, scheduled_id: str, call_id: str | None, now: datetime) -> None:
        with self._db.transaction() as connection:
            row = connection.execute(
                f"SELECT call_ids FROM scheduled_calls WHERE id = ?{self._db.dialect.for_update}",  # noqa: S608
                (scheduled_id,)).fetchone()
            if row is None:
                return
            call_ids = [*json.loads(row["call_ids"]), *([call_id] if call_id else [])]
            connection.execute(
                "UPDATE scheduled_calls SET call_ids = ?, attempts_made = attempts_made + 1, updated_at = ?"
                " WHERE id = ?", (json.dumps(call_ids), stamp(now), scheduled_id))


def _row(row: Any) -> dict[str, Any]:
    """Columns as stored, JSON fields decoded, times parsed, flags as booleans."""
    values = dict(row)
    for key in _JSON:
        values[key] = json.loads(values[key])
    for key in _TIMES:
        values[key] = datetime.fromisoformat(values[key]) if values[key] else None
    values["when_allowed"] = bool(values["when_allowed"])
    return values
