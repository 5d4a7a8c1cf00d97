"""The call log: call records with their transcripts, in the shape tools return."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from twilio_caller.clock import Clock, isoformat
from twilio_caller.errors import InvalidInputError
from twilio_caller.store import Store

TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


class CallLog:
    def __init__(self, store: Store, clock: Clock, owner_timezone: str) -> None:
        self._store = store
        self._clock = clock
        self._zone = ZoneInfo(owner_timezone)

    def list(
        self,
        *,
        contact_id: int | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        clauses, parameters = [], []
        if contact_id is not None:
            clauses.append("contact_id = ?")
            parameters.append(contact_id)
        if status is not None:
            clauses.append("status = ?")
            parameters.append(status)
        if since is not None:
            clauses.append("created_at >= ?")
            parameters.append(isoformat(self.parse_since(since).astimezone(timezone.utc)))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._store.query(
            f"SELECT * FROM calls {where} ORDER BY created_at DESC, rowid DESC LIMIT ?",
            [*parameters, limit],
        )
        return [record(row, self._turns(row["id"])) for row in rows]

    def parse_since(self, text: str) -> datetime:
        """`today`, `yesterday`, an ISO date (its start in the owner's zone) or date-time."""
        value = text.strip().lower()
        today = self._clock.now().astimezone(self._zone).date()
        relative = {"today": today, "yesterday": today - timedelta(days=1)}
        if value in relative:
            return _start_of(relative[value], self._zone)
        try:
            if len(value) == 10:
                return _start_of(date.fromisoformat(value), self._zone)
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InvalidInputError(
                f"since: {text!r} is not a date or time; use e.g. 2026-11-24, "
                "2026-11-24T09:00:00-06:00, today or yesterday",
                field="since",
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=self._zone)

    def _turns(self, call_id: str) -> Sequence[sqlite3.Row]:
        return self._store.query(
            "SELECT speaker, text, confidence, at FROM turns WHERE call_id = ? ORDER BY id",
            (call_id,),
        )


def record(row: sqlite3.Row, turns: Sequence[sqlite3.Row]) -> dict[str, Any]:
    transcript = [dict(turn) for turn in turns]
    heard = [turn for turn in transcript if turn["speaker"] == "callee"]
    reply = (
        {"text": heard[-1]["text"], "confidence": heard[-1]["confidence"], "untrusted": True}
        if heard
        else None
    )
    return {
        "call_id": row["id"],
        "twilio_sid": row["twilio_sid"],
        "to": {"name": row["to_name"], "number": row["to_number"]},
        "status": row["status"],
        "answered_by": row["answered_by"],
        "reply": reply,
        "no_reply_reason": None if reply else row["no_reply_reason"],
        "transcript": transcript,
        "duration_seconds": row["duration_seconds"],
        "ended": row["status"] in TERMINAL_STATUSES,
        "voicemail_left": bool(row["voicemail_left"]),
        "message": row["message"],
        "created_at": row["created_at"],
    }


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)
