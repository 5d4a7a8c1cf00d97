"""Scheduled calls and retries, kept in the store (migration 0003_scheduled_calls): what to
dial, when, how to retry and what came of it. Any process may add or cancel one; only the
server's scheduler (scheduler.py) dials, through the dialer's one pipeline.

A scheduled call moves through these states:
  scheduled → dialing → scheduled (a retry, or a refusal waited out) … → done
  scheduled → missed (the server was not running at the due time and came back too late)
  dialing → refused (the safety rules at dial time said no, for good)
  dialing → failed (the request no longer holds, e.g. the contact was removed)
  scheduled | dialing → canceled (no further attempt; a live call goes on)"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from twilio_caller.call_status import CallStatus
from twilio_caller.clock import Clock, isoformat
from twilio_caller.errors import InvalidInputError, NotFoundError
from twilio_caller.store import Store
from twilio_caller.store.ports import NewScheduled, Row

PREFIX = "sched_"
RETRY_OUTCOMES = (CallStatus.BUSY.value, CallStatus.NO_ANSWER.value, CallStatus.FAILED.value, "voicemail")
FINAL_STATES = frozenset({"done", "missed", "refused", "failed", "canceled"})
OPEN_STATES = ("scheduled", "dialing")



@dataclass(frozen=True)
class Retry:
    on: tuple[str, ...] = ()
    attempts: int = 1
    spacing_minutes: float = 10

    @classmethod
    def from_arguments(cls, retry: Mapping[str, Any] | None) -> Retry:
        if not retry:
            return cls()
        return cls(on=tuple(dict.fromkeys(retry.get("on", RETRY_OUTCOMES))),
                    attempts=int(retry.get("attempts", 3)),
                    spacing_minutes=float(retry.get("spacing_minutes", 10)))


@dataclass(frozen=True)
class Scheduled:
    id: str
    arguments: dict[str, Any]
    to_name: str | None
    to_number: str
    due_at: datetime
    retry: Retry
    when_allowed: bool
    attempts_made: int
    state: str
    claimed_at: datetime | None
    call_ids: list[str]
    outcome: str | None
    detail: str | None
    created_at: str

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheduled_id": self.id,
            "to": {"name": self.to_name, "number": self.to_number},
            "message": self.arguments["message"],
            "at": isoformat(self.due_at),
            "state": self.state,
            "attempts_made": self.attempts_made,
            "retry": {"on": list(self.retry.on), "attempts": self.retry.attempts,
                      "spacing_minutes": self.retry.spacing_minutes},
            "when_allowed": self.when_allowed,
            "call_ids": list(self.call_ids),
            "outcome": self.outcome,
            "detail": self.detail,
            "created_at": self.created_at,
        }


class ScheduleBook:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._schedule = store.schedule
        self._calls = store.calls
        self._clock = clock

    def add(self, arguments: Mapping[str, Any], to_name: str | None, to_number: str, due: datetime,
            retry: Retry, *, when_allowed: bool, detail: str | None = None) -> Scheduled:
        scheduled_id = PREFIX + secrets.token_hex(8)
        self._schedule.add(NewScheduled(
            id=scheduled_id, arguments=dict(arguments), to_name=to_name, to_number=to_number, due_at=_utc(due),
            retry_on=list(retry.on), max_attempts=retry.attempts, spacing_minutes=retry.spacing_minutes,
            when_allowed=when_allowed, detail=detail,
        ), self._clock.now())
        return self.get(scheduled_id)

    def find(self, scheduled_id: str) -> Scheduled | None:
        row = self._schedule.get(scheduled_id)
        return _scheduled(row) if row is not None else None

    def get(self, scheduled_id: str) -> Scheduled:
        found = self.find(scheduled_id)
        if found is None:
            raise NotFoundError(f"no scheduled call with id {scheduled_id!r} (list_scheduled shows them)")
        return found

    def all(self, *, include_finished: bool = False) -> list[Scheduled]:
        return [_scheduled(row) for row in self._schedule.in_states(() if include_finished else OPEN_STATES)]

    def due(self, now: datetime) -> list[Scheduled]:
        return [_scheduled(row) for row in self._schedule.due(now)]

    def in_state(self, state: str) -> list[Scheduled]:
        return [_scheduled(row) for row in self._schedule.in_states((state,))]

    def pending(self) -> int:
        return self._schedule.count(OPEN_STATES)

    def cancel(self, scheduled_id: str) -> Scheduled:
        item = self.get(scheduled_id)
        if item.final:
            raise InvalidInputError(f"scheduled call {scheduled_id} is already {item.state}; nothing to cancel",
                                    field="scheduled_id")
        self._update(scheduled_id, OPEN_STATES, state="canceled",
                     detail="canceled by the user" + ("; the call in progress goes on (hangup ends it)"
                                                      if item.state == "dialing" else ""))
        return self.get(scheduled_id)

    def claim(self, scheduled_id: str) -> bool:
        """scheduled → dialing, exactly once however many schedulers look at it."""
        return self._update(scheduled_id, ("scheduled",), state="dialing", claimed_at=self._clock.now())

    def placed(self, scheduled_id: str, call_id: str | None) -> None:
        """One more attempt made (`call_id` None: Twilio took no call)."""
        self._schedule.add_attempt(scheduled_id, call_id, self._clock.now())

    def again(self, scheduled_id: str, due: datetime, *, outcome: str | None, detail: str) -> bool:
        """dialing → scheduled at `due` (a retry, or a refusal waited out); not if canceled."""
        return self._update(scheduled_id, ("dialing",), state="scheduled", due_at=_utc(due),
                            outcome=outcome, detail=detail)

    def finish(self, scheduled_id: str, state: str, *, outcome: str | None, detail: str | None,
               from_states: Sequence[str] = ("dialing",)) -> bool:
        return self._update(scheduled_id, from_states, state=state, outcome=outcome, detail=detail)

    def record_outcome(self, scheduled_id: str, outcome: str | None) -> None:
        """The last attempt's outcome, whatever the state (a canceled one's call ended too)."""
        self._update(scheduled_id, tuple(FINAL_STATES | set(OPEN_STATES)), outcome=outcome)

    def call_since(self, number: str, since: datetime) -> str | None:
        """A call to `number` recorded at or after `since` (one placed just before a crash)."""
        return self._calls.latest_to(number, since)

    def _update(self, scheduled_id: str, from_states: Sequence[str], **values: Any) -> bool:
        return self._schedule.transition(scheduled_id, from_states, values, self._clock.now())


def _scheduled(row: Row) -> Scheduled:
    return Scheduled(
        id=row["id"],
        arguments=dict(row["arguments"]),
        to_name=row["to_name"],
        to_number=row["to_number"],
        due_at=row["due_at"],
        retry=Retry(on=tuple(row["retry_on"]), attempts=row["max_attempts"],
                    spacing_minutes=row["spacing_minutes"]),
        when_allowed=bool(row["when_allowed"]),
        attempts_made=row["attempts_made"],
        state=row["state"],
        claimed_at=row["claimed_at"],
        call_ids=list(row["call_ids"]),
        outcome=row["outcome"],
        detail=row["detail"],
        created_at=row["created_at"],
    )


def _utc(moment: datetime) -> datetime:
    from datetime import timezone

    return moment.astimezone(timezone.utc)


def spacing(retry: Retry) -> timedelta:
    return timedelta(minutes=retry.spacing_minutes)
