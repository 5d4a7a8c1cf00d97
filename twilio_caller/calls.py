"""The call log: call records with their transcripts, in the shape tools return."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from twilio_caller import latency
from twilio_caller.call_status import TERMINAL
from twilio_caller.clock import Clock
from twilio_caller.errors import InvalidInputError
from twilio_caller.store import Store
from twilio_caller.call_request import CallRequest
from twilio_caller.store.ports import CallFilter, CallRepository, Line, NewCall, Row


class CallLog:
    def __init__(self, store: Store, clock: Clock, owner_timezone: str) -> None:
        self._calls = store.calls
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
        where = CallFilter(contact_id=contact_id, removed_contact=_removed(contact_id, removed_contact),
                           status=status, since=self.parse_since(since) if since is not None else None)
        return [full_record(self._calls, row) for row in self._calls.find(where, limit)]

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
        return self._calls.purge(CallFilter(contact_id=contact_id,
                                            removed_contact=_removed(contact_id, removed_contact),
                                            before=before, ended_only=True))

    def removed_contact_called(self, name: str) -> bool:
        """Whether calls went to a contact of this name that is no longer in the book."""
        return bool(self._calls.find(CallFilter(removed_contact=_removed(None, name)), 1))

    def purge_expired(self, retention_days: int) -> dict[str, int]:
        return self.purge(before=self._clock.now() - timedelta(days=retention_days))



def full_record(calls: CallRepository, row: Row) -> dict[str, Any]:
    """A call as tools return it: the row, its transcript and its audio fallbacks."""
    found = record(row, calls.turns(row["id"]), audio_fallbacks(calls, row["id"]))
    found["latency"] = latency.of_call(calls.event_payloads(row["id"], "latency"))
    return found


def audio_fallbacks(calls: CallRepository, call_id: str) -> list[dict[str, str]]:
    """The lines that were to be played with pre-generated audio but were <Say>ed, and why."""
    return [{key: str(value) for key, value in payload.items() if key in ("text", "reason", "detail")}
            for payload in calls.event_payloads(call_id, "audio")]


def record(row: Row, turns: Sequence[Row], fallbacks: list[dict[str, str]] | None = None) -> dict[str, Any]:
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
        "ended": row["status"] in TERMINAL,
        "voicemail_left": bool(row["voicemail_left"]),
        "opted_out": bool(row["opted_out"]),
        "audio_fallbacks": fallbacks or [],
        "message": row["message"],
        "created_at": row["created_at"],
        "end_reason": row["end_reason"],
    }


def _removed(contact_id: int | None, removed_contact: str | None) -> str | None:
    """The calls of one contact are found by its id, or — once it was removed from the book
    — by the name the calls kept (spaces folded)."""
    if contact_id is not None or removed_contact is None:
        return None
    return " ".join(removed_contact.split())


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


class CallWriter:
    """Every write to a call's record: one short transaction each, done before Twilio gets
    its answer, so what Twilio was told is always on disk."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._calls = store.calls
        self._clock = clock

    @property
    def store(self) -> Store:
        return self._store

    def placed(self, call_id: str, twilio_sid: str, status: str) -> None:
        self._calls.placed(call_id, twilio_sid, status)

    def not_placed(self, call_id: str, error: str) -> None:
        """Twilio refused the call: it failed, and it does not count against any cap."""
        self._calls.not_placed(call_id, error, self._clock.now())

    def turn(self, call_id: str, speaker: str, text: str, confidence: float | None = None,
             dedupe_key: str | None = None) -> bool:
        """Record a transcript line; False when `dedupe_key` was recorded before (a replay)."""
        return self.turns(call_id, [(speaker, text, confidence, dedupe_key)])[0]

    def turns(self, call_id: str, lines: Sequence[Line]) -> list[bool]:
        """Record several transcript lines (speaker, text, confidence, dedupe_key) in one
        transaction; for each, False when its dedupe_key was recorded before."""
        return self._calls.add_turns(call_id, lines, self._clock.now())

    def event(self, call_id: str, kind: str, status: str | None, sequence: int | None,
              payload: Mapping[str, Any], *, dedupe_by_content: bool = False) -> bool:
        """Record an event; False for a duplicate: same kind and SequenceNumber, or — with
        `dedupe_by_content` and no SequenceNumber — the same payload."""
        content = json.dumps(payload, sort_keys=True)
        content_key = (hashlib.sha256(content.encode()).hexdigest()
                       if dedupe_by_content and sequence is None else None)
        return self._calls.add_event(call_id, kind, status, sequence, payload, self._clock.now(),
                                     content_key=content_key)

    def advance(self, call_id: str, status: str, **fields: Any) -> str:
        """Move the call forward to `status` (never back; a terminal state is final) and set
        `fields` (answered_by, duration_seconds, no_reply_reason, ...). Returns the status now."""
        return self._calls.advance(call_id, status, fields, self._clock.now())

    def get(self, call_id: str) -> dict[str, Any] | None:
        row = self._calls.get(call_id)
        return full_record(self._calls, row) if row is not None else None


def new_call(call_id: str, token: str, request: CallRequest) -> NewCall:
    """The record of a call the safety gate is asked to allow."""
    return NewCall(
        id=call_id, token=token, contact_id=request.contact.id if request.contact else None,
        to_name=request.to_name, to_number=request.to_number, message=request.message,
        mode="interactive" if request.interactive else "notify", keep_open=request.keep_open,
        voice=request.voice, language=request.language, engine=request.engine,
    )
