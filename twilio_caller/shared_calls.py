"""Several server instances on one store (PostgreSQL behind a balancer): any instance answers
any request of any call. A call's session in an instance is a cache of the store: what another
instance changed — a reply heard, a status, an action queued or delivered, the sequences of
the callback URLs — is read back before a request is answered here, before a tool acts here,
and whenever another instance says the call changed (the store's wake-ups: LISTEN/NOTIFY).

The read-back is one statement (`store/sql/read_back.py`), awaited through the store's reader
(psycopg's async pool on PostgreSQL): the event loop serves other calls meanwhile. What changed
the session here while it was being read (an answer saved, an action queued, another refresh:
`CallSession.revision`) makes it read again, so an older picture never overwrites a newer one.

What only lived in memory and a waiting tool needs is written too: the outcomes of listening
turns (events `outcome`, numbered), how many of them the agent was handed (events `seen`),
each instance's progress events (events `progress`, for a `call` streaming on another);
what the conversation carries from one answer to the next (the unsteered budget, the
acknowledgement timing, a goodbye waiting for machine detection) is in the call's state."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict

from twilio_caller.call_state import CallStates
from twilio_caller.call_status import TERMINAL, status_rank
from twilio_caller.calls import CallWriter
from twilio_caller.clock import Clock
from twilio_caller.errors import TwilioCallerError
from twilio_caller.sessions import CallSession, Outcome, action_from_dict
from twilio_caller.store.ports import OUTCOME_EVENT, SEEN_EVENT, CallReader, CallSnapshot, CallStateRecord, Wakeups

log = logging.getLogger("twilio_caller.shared_calls")
OUTCOME = OUTCOME_EVENT
SEEN = SEEN_EVENT
PROGRESS = "progress"


class SharedCalls:
    def __init__(self, writer: CallWriter, states: CallStates, wakeups: Wakeups, reader: CallReader,
                 clock: Clock, owner: str) -> None:
        self._writer = writer
        self._store = writer.store
        self._calls = writer.store.calls
        self._owner = owner
        self._clock = clock
        self._states = states
        self._wakeups = wakeups
        self._reader = reader
        self._notifying: set[asyncio.Future[None]] = set()

    async def close(self) -> None:
        """After the last request: the notifications under way are sent, the reader closed."""
        if self._notifying:
            await asyncio.gather(*self._notifying, return_exceptions=True)
        await self._reader.close()

    async def read(self, call_id: str) -> CallSnapshot | None:
        """The call as the store holds it (None: unknown), in one statement."""
        return await self._reader.read_back(call_id)

    async def outcome(self, session: CallSession, outcome: Outcome) -> None:
        """A listening turn's outcome, numbered in the call (a replay writes nothing twice),
        then in the session: no refresh runs in between (it would find it in the store first)."""
        async with session.syncing:
            await self._store.off_loop(self._writer.event, session.call_id, OUTCOME, outcome.kind,
                                       len(session.outcomes) + 1, asdict(outcome))
            await session.record_outcome(outcome)

    async def seen(self, session: CallSession) -> None:
        """The agent was handed the outcomes up to `session.seen`, through this instance."""
        if session.seen:
            await self._store.off_loop(self._writer.event, session.call_id, SEEN, None, session.seen,
                                       {"seen": session.seen})

    def steered(self, session: CallSession) -> None:
        """The agent steered the call through this instance, outside any answer (a `wait`)."""
        self._states.steer(session.call_id)

    def changed(self, session: CallSession) -> None:
        """Tell the other instances (after the change was committed; the progress so far on
        record first, so a `call` streaming there shows it before its result), in a store
        thread: the caller goes on at once. A notification that cannot be sent is logged: the
        others still read the store before they answer."""
        self.publish(session)
        task = asyncio.ensure_future(self._notify(session.call_id))
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _notify(self, call_id: str) -> None:
        try:
            await self._store.off_loop(self._wakeups.notify, call_id)
        except TwilioCallerError as exc:
            log.warning("call %s: other instances not woken: %s", call_id, exc.message)

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

    async def refresh(self, session: CallSession, snapshot: CallSnapshot | None = None,
                      revision: int | None = None) -> None:
        """Bring the session up to the store: `snapshot` when it was read while the session
        was at `revision` (else, or when the session changed since, it is read now). The
        callback sequences only when no answer is being made here (that answer writes them);
        the actions being delivered here stay taken."""
        async with session.syncing:
            if snapshot is None or revision != session.revision:
                snapshot = await self._steady(session)
            if snapshot is None:
                return
            self._apply(session, snapshot)
        await self._status(session, str(snapshot.row["status"]))
        await session.notify()

    async def _steady(self, session: CallSession) -> CallSnapshot | None:
        """A read-back during which nothing here changed the session (else read again)."""
        while True:
            revision = session.revision
            snapshot = await self._reader.read_back(session.call_id)
            if revision == session.revision:
                return snapshot

    def _apply(self, session: CallSession, snapshot: CallSnapshot) -> None:
        state = snapshot.state or CallStateRecord()
        if not session.answering.locked():
            if state.gather_seq != session.gather_number:  # asked elsewhere: in its language, if any
                session.prompt_language = self._states.prompt_language(session.call_id, state.gather_seq)
            session.gather_number, session.hold_number = state.gather_seq, state.hold_seq
            if state.reprompts_left is not None:
                session.reprompts_left = state.reprompts_left
            session.last_prompt = list(state.last_prompt or [])
        session.carry_on(state.carried, self._clock, answering=session.answering.locked())
        session.replace_pending([action_from_dict(action) for action in state.pending_actions or []], session.taken)
        session.detected_as = snapshot.row["answered_by"]  # the result, whichever instance it reached
        session.detecting = state.async_detection and session.detected_as is None
        for outcome in [Outcome(**payload) for payload in snapshot.outcomes][len(session.outcomes):]:
            if outcome.kind == "reply" and not session.streamed:  # streamed: the progress records say it
                session.emit({"event": "heard", "text": outcome.text, "confidence": outcome.confidence}, own=False)
            session.outcomes.append(outcome)
        session.seen = max(session.seen, snapshot.seen)
        if session.streamed:
            self._progress(session)
        session.revision += 1

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
        """Forward only (a status read before a newer one arrived here changes nothing)."""
        if session.ended or status == session.status or status_rank(status) < status_rank(session.status):
            return
        if status in TERMINAL:
            if not session.streamed:
                session.emit({"event": status}, own=False)
            await session.end(status)
            return
        session.status = status
        if not session.streamed:
            session.emit({"event": "answered" if status == "in-progress" else status}, own=False)
