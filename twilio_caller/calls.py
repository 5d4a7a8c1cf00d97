"""The call log: call records with their transcripts, in the shape tools return."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from twilio_caller.clock import Clock, isoformat
from twilio_caller.call_status import TERMINAL, status_rank
from twilio_caller.errors import InvalidInputError
from twilio_caller.store import Store

TERMINAL_STATUSES = TERMINAL


class CallLog:
    def __init__(self, store: Store, clock: Clock, owner_timezone: str) -> None:
        self._store = store
        self._clock = clock
        self._zone = ZoneInfo(owner_timezone)

    def list(
        self,
        *,
        contact_id: int | None = None,
        removed_contact: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        clauses, parameters = _contact_clauses(contact_id, removed_contact)
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
        return [record(row, self._turns(row["id"]), audio_fallbacks(self._store, row["id"])) for row in rows]

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

    def purge(self, *, before: datetime | None = None, contact_id: int | None = None,
              removed_contact: str | None = None) -> dict[str, int]:
        """Delete the transcripts (turns and callback payloads) of ended calls placed before
        `before` and/or to one contact. The call rows stay, for the caps and the audit."""
        clauses, parameters = _contact_clauses(contact_id, removed_contact)
        clauses.append(f"status IN ({', '.join('?' * len(TERMINAL_STATUSES))})")
        parameters += sorted(TERMINAL_STATUSES)
        if before is not None:
            clauses.append("created_at < ?")
            parameters.append(isoformat(before.astimezone(timezone.utc)))
        calls = f"SELECT id FROM calls WHERE {' AND '.join(clauses)}"
        with self._store.transaction() as connection:
            turns = connection.execute(f"DELETE FROM turns WHERE call_id IN ({calls})", parameters).rowcount
            events = connection.execute(f"DELETE FROM events WHERE call_id IN ({calls})", parameters).rowcount
        return {"turns": turns, "events": events}

    def removed_contact_called(self, name: str) -> bool:
        """Whether calls went to a contact of this name that is no longer in the book."""
        clauses, parameters = _contact_clauses(None, name)
        return bool(self._store.query(f"SELECT 1 FROM calls WHERE {clauses[0]} LIMIT 1", parameters))

    def purge_expired(self, retention_days: int) -> dict[str, int]:
        return self.purge(before=self._clock.now() - timedelta(days=retention_days))

    def _turns(self, call_id: str) -> Sequence[sqlite3.Row]:
        return self._store.query(
            "SELECT speaker, text, confidence, at FROM turns WHERE call_id = ? ORDER BY id",
            (call_id,),
        )


def audio_fallbacks(store: Store, call_id: str) -> list[dict[str, str]]:
    """The lines that were to be played with pre-generated audio but were <Say>ed, and why."""
    import json

    rows = store.query("SELECT payload FROM events WHERE call_id = ? AND kind = 'audio' ORDER BY id", (call_id,))
    return [{key: str(value) for key, value in json.loads(row["payload"]).items()
             if key in ("text", "reason", "detail")} for row in rows]


def record(row: sqlite3.Row, turns: Sequence[sqlite3.Row],
           fallbacks: list[dict[str, str]] | None = None) -> dict[str, Any]:
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
        "opted_out": bool(row["opted_out"]),
        "audio_fallbacks": fallbacks or [],
        "message": row["message"],
        "created_at": row["created_at"],
        "end_reason": row["end_reason"],
    }


def _contact_clauses(contact_id: int | None, removed_contact: str | None) -> tuple[list[str], list[object]]:
    """SQL conditions for the calls of one contact: by id, or — once it was removed from the
    book (its calls' contact_id is then NULL) — by the name the calls kept."""
    if contact_id is not None:
        return ["contact_id = ?"], [contact_id]
    if removed_contact is not None:
        return ["contact_id IS NULL AND LOWER(to_name) = LOWER(?)"], [" ".join(removed_contact.split())]
    return [], []


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


class CallWriter:
    """Every write to a call's record: one short transaction each, done before Twilio gets
    its answer, so what Twilio was told is always on disk."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    @property
    def store(self) -> Store:
        return self._store

    def insert(self, connection: sqlite3.Connection, fields: dict[str, Any]) -> None:
        """Inside safety's reservation transaction: the call exists from the moment it is allowed."""
        row = {**fields, "status": "pending", "created_at": isoformat(self._clock.now())}
        columns = ", ".join(row)
        connection.execute(
            f"INSERT INTO calls ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )

    def placed(self, call_id: str, twilio_sid: str, status: str) -> None:
        with self._store.transaction() as connection:
            connection.execute(
                "UPDATE calls SET twilio_sid = ?, status = CASE WHEN status = 'pending'"
                " THEN ? ELSE status END WHERE id = ?",
                (twilio_sid, status, call_id),
            )

    def not_placed(self, call_id: str, error: str) -> None:
        """Twilio refused the call: it failed, and it does not count against any cap."""
        with self._store.transaction() as connection:
            connection.execute(
                "UPDATE calls SET status = 'failed', placed = 0, error = ?, ended_at = ?"
                " WHERE id = ?",
                (error, isoformat(self._clock.now()), call_id),
            )

    def turn(self, call_id: str, speaker: str, text: str, confidence: float | None = None,
             dedupe_key: str | None = None) -> bool:
        """Record a transcript line; False when `dedupe_key` was recorded before (a replay)."""
        return self.turns(call_id, [(speaker, text, confidence, dedupe_key)])[0]

    def turns(self, call_id: str, lines: Sequence[tuple[str, str, float | None, str | None]]) -> list[bool]:
        """Record several transcript lines (speaker, text, confidence, dedupe_key) in one
        transaction; for each, False when its dedupe_key was recorded before."""
        at = isoformat(self._clock.now())
        with self._store.transaction() as connection:
            return [
                connection.execute(
                    "INSERT OR IGNORE INTO turns (call_id, speaker, text, confidence, at, dedupe_key)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (call_id, speaker, text, confidence, at, dedupe_key),
                ).rowcount == 1
                for speaker, text, confidence, dedupe_key in lines
            ]

    def event(self, call_id: str, kind: str, status: str | None, sequence: int | None,
              payload: dict[str, Any], *, dedupe_by_content: bool = False) -> bool:
        """Record an event; False for a duplicate: same kind and SequenceNumber, or — with
        `dedupe_by_content` and no SequenceNumber — the same payload."""
        import hashlib
        import json

        content = json.dumps(payload, sort_keys=True)
        content_key = (hashlib.sha256(content.encode()).hexdigest()
                       if dedupe_by_content and sequence is None else None)
        with self._store.transaction() as connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO events (call_id, kind, status, sequence_number, payload, at, content_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (call_id, kind, status, sequence, json.dumps(payload), isoformat(self._clock.now()), content_key),
            )
            return cursor.rowcount == 1

    def advance(self, call_id: str, status: str, **fields: Any) -> str:
        """Move the call forward to `status` (never back; a terminal state is final) and set
        `fields` (answered_by, duration_seconds, no_reply_reason, ...). Returns the status now."""
        with self._store.transaction() as connection:
            current = connection.execute("SELECT status FROM calls WHERE id = ?", (call_id,)).fetchone()
            if current is None:
                return status
            now_status = current["status"]
            if status_rank(status) > status_rank(now_status):
                now_status = status
                if status in TERMINAL_STATUSES:
                    fields["ended_at"] = isoformat(self._clock.now())
            sets = {"status": now_status, **{k: v for k, v in fields.items() if v is not None}}
            assignments = ", ".join(f"{column} = ?" for column in sets)
            connection.execute(
                f"UPDATE calls SET {assignments} WHERE id = ?", [*sets.values(), call_id]
            )
            return str(now_status)

    def get(self, call_id: str) -> dict[str, Any] | None:
        rows = self._store.query("SELECT * FROM calls WHERE id = ?", (call_id,))
        if not rows:
            return None
        turns = self._store.query(
            "SELECT speaker, text, confidence, at FROM turns WHERE call_id = ? ORDER BY id",
            (call_id,),
        )
        return record(rows[0], turns, audio_fallbacks(self._store, call_id))
