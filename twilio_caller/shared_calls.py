"""Several server instances on one store (PostgreSQL behind a balancer): any instance answers
any request of any call. A call's session in an instance is a cache of the store: what another
instance changed — a reply heard, a status, an action queued or delivered, the sequences of
the callback URLs — is read back before a request is answered here, before a tool acts here,
and whenever another instance says the call changed (the store's wake-ups: LISTEN/NOTIFY).

What only lived in memory and a waiting tool needs is written too: the outcomes of listening
turns (events `outcome`, numbered), how many of them the agent was handed (events `seen`),
each instance's progress events (events `progress`, for a `call` streaming on another);
what the conversation carries from one answer to the next (the unsteered budget, the
acknowledgement timing, a goodbye waiting for machine detection) is in the call's state."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from twilio_caller.call_state import CallStates
from twilio_caller.call_status import TERMINAL
from twilio_caller.calls import CallWriter
from twilio_caller.clock import Clock
from twilio_caller.errors import TwilioCallerError
from twilio_caller.sessions import CallSession, Outcome, action_from_dict
from twilio_caller.store.ports import Wakeups

log = logging.getLogger("twilio_caller.shared_calls")
OUTCOME = "outcome"
SEEN = "seen"
PROGRESS = "progress"


class SharedCalls:
    def __init__(self, writer: CallWriter, states: CallStates, wakeups: Wakeups, clock: Clock,
                 owner: str) -> None:
        self._writer = writer
        self._owner = owner
        self._clock = clock
        self._calls = writer.store.calls
        self._states = states
        self._wakeups = wakeups

    def outcome(self, session: CallSession, outcome: Outcome) -> None:
        """A listening turn's outcome, numbered in the call (a replay writes nothing twice)."""
        self._writer.event(session.call_id, OUTCOME, outcome.kind, len(session.outcomes) + 1, asdict(outcome))

    def seen(self, session: CallSession) -> None:
        """The agent was handed the outcomes up to `session.seen`, through this instance."""
        if session.seen:
            self._writer.event(session.call_id, SEEN, None, session.seen, {"seen": session.seen})

    def steered(self, session: CallSession) -> None:
        """The agent steered the call through this instance, outside any answer (a `wait`)."""
        self._states.steer(session.call_id)

    def changed(self, session: CallSession) -> None:
        """Tell the other instances (after the change was committed; the progress so far on
        record first, so a `call` streaming there shows it before its result). A notification
        that cannot be sent is logged: the others still read the store before they answer."""
        self.publish(session)
        try:
            self._wakeups.notify(session.call_id)
        except TwilioCallerError as exc:
            log.warning("call %s: other instances not woken: %s", session.call_id, exc.message)

    def publish(self, session: CallSession) -> None:
        """This instance's progress events not yet on record, as one record. Progress is not
        the call: a write that fails is logged, and that progress is shown here only."""
        events, session.unpublished = session.unpublished, []
        if not events:
            return
        try:
            self._writer.event(session.call_id, PROGRESS, None, None, {"by": self._owner, "events": events})
        except TwilioCallerError as exc:
            log.warning("call %s: progress not shared: %s", session.call_id, exc.message)

    async def refresh(self, session: CallSession, row: Mapping[str, Any] | None = None) -> None:
        """Bring the session up to the store (`row`: the call's, when just read). The callback sequences only when no answer is
        being made here (that answer writes them); the actions being delivered here stay taken."""
        call_id = session.call_id
        state = self._states.load(call_id)
        if not session.answering.locked():
            session.gather_number, session.hold_number = state.gather_seq, state.hold_seq
            if state.reprompts_left is not None:
                session.reprompts_left = state.reprompts_left
            session.last_prompt = state.last_prompt
        session.carry_on(state.carried, self._clock, answering=session.answering.locked())
        session.replace_pending([action_from_dict(action) for action in state.pending_actions], session.taken)
        self._outcomes(session)
        if session.streamed:
            self._progress(session)
        record = row if row is not None else self._calls.get(call_id)
        if record is not None:
            session.detected_as = record["answered_by"]  # the result, whichever instance it reached
            session.detecting = state.async_detection and session.detected_as is None
            await self._status(session, record["status"])
        await session.notify()

    def _outcomes(self, session: CallSession) -> None:
        outcomes = [Outcome(**payload) for payload in self._calls.event_payloads(session.call_id, OUTCOME)]
        for outcome in outcomes[len(session.outcomes):]:
            if outcome.kind == "reply" and not session.streamed:  # streamed: the progress records say it
                session.emit({"event": "heard", "text": outcome.text, "confidence": outcome.confidence}, own=False)
            session.outcomes.append(outcome)
        seen = [int(payload["seen"]) for payload in self._calls.event_payloads(session.call_id, SEEN)]
        session.seen = max([session.seen, *seen])

    def _progress(self, session: CallSession) -> None:
        """The other instances' progress on this call, in the order it was recorded."""
        records = self._calls.event_payloads(session.call_id, PROGRESS)
        for record in records[session.progress_read:]:
            if record["by"] != self._owner:
                for event in record["events"]:
                    session.emit(dict(event), own=False)
        session.progress_read = len(records)

    @staticmethod
    async def _status(session: CallSession, status: str) -> None:
        if session.ended or status == session.status:
            return
        if status in TERMINAL:
            if not session.streamed:
                session.emit({"event": status}, own=False)
            await session.end(status)
            return
        session.status = status
        if not session.streamed:
            session.emit({"event": "answered" if status == "in-progress" else status}, own=False)
