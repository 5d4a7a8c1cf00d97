"""The conversation core: a live call's events (answered, heard, silence, digits, ready,
status, a machine detected later) → the commands that answer them (say, ask, hold, press,
end), in the neutral language of the call-transport port (transport/port.py); the transport parses its provider's requests
into events and renders the commands (TwiML for Twilio). Every turn and status change is
written to the store before the answer goes back; the agent's waiting tool calls are woken
through the session."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from twilio_caller import latency
from twilio_caller.call_state import PROMPT_LANGUAGE, CallStates, State
from twilio_caller.call_status import TERMINAL, status_rank
from twilio_caller.calls import CallWriter
from twilio_caller.clock import Clock
from twilio_caller.contacts import ContactBook
from twilio_caller.errors import TwilioCallerError
from twilio_caller.safety import is_opt_out
from twilio_caller.sessions import Action, CallSession, HangUp, Outcome, Press, action_from_dict
from twilio_caller.transport.port import (
    Answered, Ask, Command, Detected, Digits, EndCall, Event, Heard, Hold, Interrupted, Line, Ready, Renderer, Say,
    SendDigits, Silence, Spoken, StatusChanged,
)

if TYPE_CHECKING:
    from twilio_caller.audio import Audio, AudioLibrary
    from twilio_caller.shared_calls import SharedCalls

log = logging.getLogger("twilio_caller.conversation")
NOTIFY_GOODBYE = "Goodbye."
SILENCE_GOODBYE = "Sorry I couldn't hear you. Goodbye."
REPROMPT = "Sorry, I didn't catch that."
OPT_OUT_GOODBYE = "Understood. You won't get calls from me again. Goodbye."
FAILURE_GOODBYE = "Sorry, I have a technical problem and have to end this call. Goodbye."
NO_REPLY_BY_STATUS = {"busy": "busy", "no-answer": "no-answer", "failed": "failed",
                      "canceled": "canceled", "completed": "hung-up"}
MACHINES = ("machine", "fax")  # answered_by values that get the voicemail path
ANSWER_SECONDS = 13.5  # how long an answer may take in all, inside the provider's window (Twilio: 15 s)


@dataclass(frozen=True)
class Budgets:
    hold_seconds: float
    unsteered_seconds: float
    reprompts: int
    audio_seconds: float = 1.5
    acknowledge_after_seconds: float = 0.0  # 0: no acknowledgement while the agent thinks


@dataclass(frozen=True)
class Voicing:
    """Pre-generated audio for the lines the assistant says (ElevenLabs), if configured."""

    library: AudioLibrary
    url: Callable[[Audio], str]


class Conversation:
    def __init__(
        self,
        writer: CallWriter,
        contacts: ContactBook,
        clock: Clock,
        budgets: Budgets,
        opening: str,
        transport: Renderer,
        *,
        voicemail_mode: str = "leave-message",
        voicing: Voicing | None = None,
        steer: Callable[[CallSession, int], Awaitable[None]] | None = None,
        acknowledgements: Sequence[str] = (),
        shared: SharedCalls | None = None,
    ) -> None:
        self._writer = writer
        self._store = writer.store
        self._states = CallStates(writer.store, clock)
        self._contacts = contacts
        self._clock = clock
        self._budgets = budgets
        self._opening = opening
        self._transport = transport
        self._voicemail_mode = voicemail_mode
        self._voicing = voicing
        self._steer = steer  # moves a live call to ask for Ready(resume) now (the provider's API)
        self.acknowledgements = tuple(acknowledgements)
        self._shared = shared  # several instances on one store: what they need is written, they are told
        self._background: set[asyncio.Future[None]] = set()  # telemetry written off the loop (shared stores)

    @property
    def opening(self) -> str:
        return self._opening

    async def handle(self, session: CallSession, event: Event) -> str | None:
        """An event from the transport: the answer it waits for (as the transport renders it),
        or None for an event that needs none (a status, an interruption). A status the store
        refused raises, after the agent's waiting tools were told."""
        if isinstance(event, StatusChanged):
            await self.status(session, event)
            return None
        if isinstance(event, Interrupted):
            await self.interrupted(session, event)
            return None
        if isinstance(event, Detected):
            await self.detected(session, event)
            return None
        return await self.answer(session, event)

    async def answer(self, session: CallSession, event: Answered | Heard | Silence | Digits | Ready) -> str:
        """The answer to an event the transport waits on, as the transport renders it. The
        first request computes it; a retry or replay of the same request gets the same one."""
        match event:
            case Answered(answered_by=who):
                self.mark(session, "answered")
                document = await self._once(session, "voice", lambda: self._open(session, who))
                self.mark(session, "first_audio")
                return document
            case Heard(turn=turn, text=text, confidence=confidence, dedupe_key=dedupe_key):
                return await self._listened(session, turn, lambda: self._heard(session, text, confidence, dedupe_key))
            case Digits(turn=turn, digits=digits, dedupe_key=dedupe_key):
                return await self._listened(session, turn, lambda: self._heard(session, digits, None, dedupe_key))
            case Silence(turn=turn):
                return await self._listened(session, turn, lambda: self._heard(session, None, None, ""))
            case Ready(resume=number, text=text, confidence=confidence):
                return await self._ready(session, number, text, confidence)

    async def handed_off(self, session: CallSession, apology: str | None, *, key: str = "handoff",
                         going_on: Callable[[], Awaitable[Command | None]] | None = None) -> str:
        """A streaming session ended and handed the call back (Twilio's `<Connect action>`):
        the call goes on over a new session when `going_on` says how (made under the answer
        lock, so an answer being made for the dropped session is done first), else it ends —
        after our `end` with nothing more to say, else with `apology` first. Answered once per
        `key`; a replay gets the answer on record."""
        async def close() -> Command:
            command = await going_on() if going_on is not None else None
            if command is not None:
                return command
            return EndCall() if apology is None else await self._goodbye(session, [apology], self._deadline())
        return await self._once(session, key, close)

    def answered(self, session: CallSession, key: str) -> bool:
        """Whether request `key` has an answer made or being made (a replay gets that one)."""
        return key in session.answers or self._states.answer(session.call_id, key) is not None

    async def _listened(self, session: CallSession, number: int,
                        heard: Callable[[], Awaitable[Command]]) -> str:
        """Listening turn `number` ended: only the turn asked last is answered anew."""
        key = f"gather:{number}"
        if number != session.gather_number and key not in session.answers:
            return await self._store.off_loop(self._states.answer, session.call_id, key) or self._stale(session)
        return await self._once(session, key, heard)

    async def _ready(self, session: CallSession, number: int, text: str, confidence: float | None) -> str:
        """`Ready(N)` (Twilio: `hold?n=N`): only the resume number given last is answered
        anew; an older one gets the answer it got before (a replay), or a steady hold that
        delivers nothing."""
        key = f"hold:{number}"
        if number != session.hold_number and key not in session.answers:
            return await self._store.off_loop(self._states.answer, session.call_id, key) or self._stale(session)
        said = " ".join(text.split())
        return await self._once(session, key, lambda: self._held(session, said, confidence,
                                                                 f"{session.call_id}:{key}"))

    async def _held(self, session: CallSession, said: str = "", confidence: float | None = None,
                    dedupe_key: str = "") -> Command:
        if session.ended:
            return EndCall()
        if said:
            opted_out = await self._said_while_waiting(session, said, confidence, dedupe_key)
            if opted_out is not None:
                return opted_out
        if session.goodbye_pending:
            return await self._after_message(session)
        return await self._wait_for_agent(session, self._deadline())

    async def _after_message(self, session: CallSession) -> Command:
        """A message said while asynchronous detection had not reported: a person then hears
        the goodbye; a machine's voicemail path comes through `detected`, so hold till then
        (no longer than a call may go unsteered)."""
        await session.wait_until(lambda: not session.detecting or session.ended, self._budgets.hold_seconds)
        unsteered = self._clock.monotonic() - session.idle_since > self._budgets.unsteered_seconds
        if (session.detecting or session.detected_as in MACHINES) and not unsteered:
            return Hold(self._next_resume(session))
        return await self._goodbye(session, [NOTIFY_GOODBYE], self._deadline())  # goodbye_pending stays: a retry says it too

    async def _said_while_waiting(self, session: CallSession, text: str, confidence: float | None,
                                  dedupe_key: str) -> Command | None:
        """The callee spoke while held: on record, and the agent's next reply (marked as said
        while waiting); an opt-out ends the call (the command returned)."""
        self._writer.turn(session.call_id, "callee", text, confidence, dedupe_key)
        session.emit({"event": "heard", "text": text, "confidence": confidence, "while_waiting": True})
        if is_opt_out(text):
            return await self._opt_out(session, text, confidence, self._deadline())
        if session.interactive:
            await self._outcome(session, Outcome("reply", text, confidence, while_waiting=True))
        return None

    def mark(self, session: CallSession, name: str, turn: int = 0, at: datetime | None = None) -> None:
        """Write a latency mark once, and a turn's marks only in their order (latency.py);
        telemetry never fails a call: a refused write is only logged."""
        key = (name, turn)
        if key in session.latency_marked:
            return
        if name in latency.ORDER[1:]:
            before = latency.ORDER[latency.ORDER.index(name) - 1]
            if turn == 0 or (before, turn) not in session.latency_marked:
                return
        session.latency_marked.add(key)
        payload = latency.payload(name, turn, at or self._clock.now())
        if self._shared is None:
            self._mark(session.call_id, name, payload)
            return
        task = asyncio.ensure_future(self._store.off_loop(self._mark, session.call_id, name, payload))
        self._background.add(task)  # a shared store: telemetry does not hold the turn up
        task.add_done_callback(self._background.discard)

    def _mark(self, call_id: str, name: str, payload: dict[str, object]) -> None:
        try:
            self._writer.event(call_id, "latency", None, None, payload)
        except TwilioCallerError as exc:
            log.warning("call %s: latency mark %s not written: %s", call_id, name, exc.message)

    async def interrupted(self, session: CallSession, event: Interrupted) -> None:
        """The callee spoke over the assistant: what they actually heard goes on record."""
        self._writer.event(session.call_id, "interrupted", None, None, {"heard": event.heard})
        session.emit({"event": "interrupted", "heard": event.heard})

    async def detected(self, session: CallSession, event: Detected) -> None:
        """Asynchronous machine detection decided while the call goes on: a machine or a fax
        moves the call to the voicemail path (its answer written first, under the next resume
        number, then the live call is pointed at it); a person, or no decision, changes
        nothing but the record. A result for an ended call, or a repeat, changes nothing."""
        if session.ended or not self._writer.event(
                session.call_id, "amd", event.answered_by, None, dict(event.details), dedupe_by_content=True):
            return
        self._writer.advance(session.call_id, session.status, answered_by=event.answered_by)
        session.detecting, session.detected_as = False, event.answered_by
        await session.notify()  # a message said before the result waits for it
        if event.answered_by not in MACHINES or self._steer is None:
            return
        session.detour()  # a request held for the agent lets go of the call
        resume = await self._voicemail_path(session, event.answered_by)
        await self._steer(session, resume)  # an answer not saved is a stale resume: the call ends

    async def taken_back(self, session: CallSession, answered_by: str | None) -> int | None:
        """A live call taken back after a restart: what machine detection decided — from the
        store, or from the provider's record of the call (`answered_by`, when the result went
        to the stopped server's URL) — applies again. A machine or a fax: the resume number of
        its voicemail path (the answer made before the restart, else made now); else None.
        No acknowledgement is due in the wait that was going on (one may have been said)."""
        session.acknowledged = True
        record = self._writer.get(session.call_id)
        known = record["answered_by"] if record else None
        who = known or answered_by
        session.detected_as = who
        if who is None:
            return None
        if known is None:
            self._writer.event(session.call_id, "amd", who, None, {"AnsweredBy": who, "from": "calls-api"},
                               dedupe_by_content=True)
            self._writer.advance(session.call_id, session.status, answered_by=who)
        if who not in MACHINES:
            return None
        return await self._voicemail_path(session, who)

    async def _voicemail_path(self, session: CallSession, who: str) -> int:
        """The voicemail answer, under a resume number written down before it is made: a
        restart finds that number and gives (or makes) the very same answer, so the message
        is left once."""
        planned = self._writer.store.calls.event_payloads(session.call_id, "voicemail-path")
        if planned:
            resume = int(planned[0]["resume"])
            session.hold_number = max(session.hold_number, resume)
        else:
            resume = self._next_resume(session)
            self._writer.event(session.call_id, "voicemail-path", None, None, {"resume": resume})
        await self._once(session, f"hold:{resume}", lambda: self._voicemail(session, who, self._deadline()))
        return resume

    def restore(self, session: CallSession, state: State | None = None) -> None:
        """Rebuild the session's live state from the store (after a restart, or a failed write;
        `state`: the call's, when just read)."""
        state = state if state is not None else self._states.load(session.call_id)
        session.gather_number, session.hold_number = state.gather_seq, state.hold_seq
        if state.reprompts_left is not None:
            session.reprompts_left = state.reprompts_left
        session.last_prompt = state.last_prompt
        session.prompt_language = self._states.prompt_language(session.call_id, state.gather_seq)
        session.requeue([action_from_dict(action) for action in state.pending_actions])

    @staticmethod
    def _next_resume(session: CallSession) -> int:
        """The next resume number (Twilio: the hold URL's sequence), saved with the answer."""
        session.hold_number += 1
        return session.hold_number

    async def status(self, session: CallSession, event: StatusChanged) -> None:
        try:
            await self._status(session, event)
        except TwilioCallerError as exc:
            await self.fail(session, exc)
            raise

    async def _status(self, session: CallSession, event: StatusChanged) -> None:
        now = await self._store.off_loop(self._record_status, session.call_id, event)
        if now is None:
            return  # a duplicate callback changes nothing
        if now in TERMINAL and not session.ended:
            if not session.outcomes:  # else the outcome already said reply or no-speech
                reason = None if not session.interactive and now == "completed" else NO_REPLY_BY_STATUS[now]
                await self._store.off_loop(partial(self._writer.advance, session.call_id, now, no_reply_reason=reason))
            session.emit({"event": now})
            await session.end(now)
        elif now != session.status and status_rank(now) >= status_rank(session.status):  # callbacks may overlap
            if now == "in-progress":
                self.mark(session, "answered")
            session.status = now
            session.emit({"event": "answered" if now == "in-progress" else now})
            await session.notify()
        self._changed(session)

    def _record_status(self, call_id: str, event: StatusChanged) -> str | None:
        """The callback and the status it moves the call to (None: a duplicate, nothing done)."""
        status = event.status.value
        if not self._writer.event(call_id, "status", status, event.sequence, dict(event.details),
                                  dedupe_by_content=True):
            return None
        return self._writer.advance(call_id, status, answered_by=event.answered_by,
                                    duration_seconds=event.duration_seconds)

    def _changed(self, session: CallSession) -> None:
        if self._shared is not None:
            self._shared.changed(session)

    async def _once(self, session: CallSession, key: str, answer: Callable[[], Awaitable[Command]]) -> str:
        """The first request computes the answer; a retry or replay gets the same answer —
        from memory, or from the store after a restart."""
        pending = session.answers.get(key)
        if pending is None:
            given = await self._store.off_loop(self._states.answer, session.call_id, key)
            if given is not None:
                return given
            pending = session.answers.get(key)  # a retry of this request may have begun it meanwhile
        if pending is None:
            pending = asyncio.ensure_future(self._answer(session, key, answer))
            session.answers[key] = pending
        return await asyncio.shield(pending)

    async def _answer(self, session: CallSession, key: str, answer: Callable[[], Awaitable[Command]]) -> str:
        """Make the answer, render it, then write it with the lines it speaks and the state it
        leaves in one transaction; only then are the agent's delivered actions reported
        delivered. The rendered answer is what is kept: a replay gets the very same one."""
        async with session.answering:
            session.unsaved, session.taken = [], []
            try:
                document = self._transport.render(session, await answer())
                lines = [(speaker, text, confidence, dedupe or f"{session.call_id}:{key}:{index}")
                         for index, (speaker, text, confidence, dedupe) in enumerate(session.unsaved)]
                document = await self._store.off_loop(partial(
                    self._states.commit, session.call_id, key, document, lines,
                    gather_seq=session.gather_number, hold_seq=session.hold_number,
                    reprompts_left=session.reprompts_left, last_prompt=list(session.last_prompt),
                    delivered=len(session.taken), carried=session.carried(self._clock),
                ))
                session.revision += 1  # a refresh that read before this commit reads again
            except TwilioCallerError as exc:  # a write failed: end the call, nothing half-recorded
                session.answers.pop(key, None)
                self._rollback(session)
                await self.fail(session, exc)
                return self._transport.render(session, EndCall((FAILURE_GOODBYE,)))
            except BaseException:
                session.answers.pop(key, None)  # not given: a retry makes it again
                self._rollback(session)
                raise
            if session.taken:
                self.mark(session, "served", session.latency_turn)
            for action in session.taken:
                action.delivered.set()
            if session.taken:  # a `say` waiting on another instance hears it was delivered
                self._changed(session)
            session.unsaved, session.taken = [], []
            return document

    @staticmethod
    async def fail(session: CallSession, error: TwilioCallerError) -> None:
        """The store refused a write: the agent's waiting tools wake with that error."""
        log.error("call %s: %s", session.call_id, error.message)
        session.failure = error
        session.emit({"event": "failed", "error": error.message})
        await session.end("failed")

    def _rollback(self, session: CallSession) -> None:
        """The answer was not saved: the session goes back to what the store holds, and the
        actions it took wait for the next request again."""
        taken = session.taken
        session.unsaved, session.taken = [], []
        session.revision += 1
        try:
            state = self._states.load(session.call_id)
        except Exception:  # the store itself is failing: keep memory as it is
            return
        session.gather_number, session.hold_number = state.gather_seq, state.hold_seq
        session.last_prompt = state.last_prompt
        session.prompt_language = self._states.prompt_language(session.call_id, state.gather_seq)
        session.requeue(taken, front=True)

    async def _open(self, session: CallSession, answered: str | None) -> Command:
        deadline = self._deadline()
        who = answered or ("unknown" if session.digits_sent else None)
        if who is not None:
            await self._store.off_loop(partial(self._writer.advance, session.call_id, session.status, answered_by=who))
        if who in MACHINES:
            return await self._voicemail(session, who, deadline)
        lines = [self._opening, session.message]
        if not session.interactive and session.detecting:  # the goodbye waits for the result
            session.goodbye_pending = True
            return Say(tuple(await self._spoken(session, lines, deadline)), self._next_resume(session))
        if not session.interactive:
            return await self._goodbye(session, [*lines, NOTIFY_GOODBYE], deadline)
        return await self._ask(session, lines, prompt=[session.message], deadline=deadline)

    async def _voicemail(self, session: CallSession, who: str, deadline: float) -> Command:
        """A machine answered, after its beep (DetectMessageEnd; asynchronously: as the beep
        was detected): leave the message, or not."""
        if who == "fax" or self._voicemail_mode == "hang-up":
            session.emit({"event": f"{who} answered: hanging up"})
            return await self._goodbye(session, [], deadline)
        session.emit({"event": "voicemail"})
        self._writer.advance(session.call_id, session.status, voicemail_left=1)
        lines = [self._opening, f"I'm calling with a message: {session.message}", NOTIFY_GOODBYE]
        return await self._goodbye(session, lines, deadline)

    async def _heard(self, session: CallSession, speech: str | None, confidence: float | None,
                     dedupe_key: str) -> Command:
        deadline = self._deadline()
        text = " ".join((speech or "").split())
        if text and not session.keep_open and not is_opt_out(text):
            return await self._reply_then_close(session, text, confidence, dedupe_key, deadline)
        if text:
            await self._store.off_loop(self._writer.turn, session.call_id, "callee", text, confidence, dedupe_key)
            session.emit({"event": "heard", "text": text, "confidence": confidence})
            if is_opt_out(text):
                return await self._opt_out(session, text, confidence, deadline)
            await self._outcome(session, Outcome("reply", text, confidence))
            return await self._after_listening(session, heard=True, deadline=deadline)
        if session.reprompts_left > 0:
            session.reprompts_left -= 1
            return await self._ask(session, session.last_prompt, prompt=session.last_prompt, deadline=deadline,
                                   language=session.prompt_language, preface=[REPROMPT])
        self._writer.advance(session.call_id, session.status, no_reply_reason="no-speech")
        session.emit({"event": "silence"})
        await self._outcome(session, Outcome("no-speech"))
        return await self._after_listening(session, heard=False, deadline=deadline)

    async def _reply_then_close(self, session: CallSession, text: str, confidence: float | None,
                                dedupe_key: str, deadline: float) -> Command:
        """The classic flow: the reply, then the closing — both lines in one write, made before
        the agent wakes and before the transport gets its answer."""
        closing = session.closing
        await self._store.off_loop(self._writer.turns, session.call_id,
                                   [("callee", text, confidence, dedupe_key),
                                    ("assistant", closing, None, f"{dedupe_key}:closing")])
        session.emit({"event": "heard", "text": text, "confidence": confidence})
        session.emit({"event": "said", "text": closing})
        await self._outcome(session, Outcome("reply", text, confidence))
        session.hung_up_by_us = True
        return EndCall(tuple(await self._voiced(session, [closing], deadline)))

    async def _after_listening(self, session: CallSession, *, heard: bool, deadline: float) -> Command:
        if session.keep_open:
            return await self._wait_for_agent(session, deadline)
        return await self._goodbye(session, [session.closing if heard else SILENCE_GOODBYE], deadline)

    async def _wait_for_agent(self, session: CallSession, deadline: float) -> Command:
        idle = self._clock.monotonic() - session.idle_since
        remaining = self._budgets.unsteered_seconds - idle
        if remaining <= 0:
            session.emit({"event": "unsteered"})
            return await self._goodbye(session, [session.closing], deadline)
        wait = min(self._budgets.hold_seconds, remaining)
        acknowledge_in = self._acknowledge_in(session)
        action = await session.next_action(wait if acknowledge_in is None else min(wait, acknowledge_in))
        if action is not None:
            session.taken.append(action)
            return await self._perform(session, action, deadline)
        acknowledge_in = self._acknowledge_in(session)
        if acknowledge_in is None or acknowledge_in > 0:
            return Hold(self._next_resume(session))
        text = self.acknowledgements[session.acknowledgements_said % len(self.acknowledgements)]
        session.acknowledged, session.acknowledgements_said = True, session.acknowledgements_said + 1
        return Hold(self._next_resume(session), tuple(await self._spoken(session, [text], deadline)))

    def _acknowledge_in(self, session: CallSession) -> float | None:
        """Seconds until this wait's acknowledgement is due (<= 0: now); None when there is
        none to give (said already in this wait, or turned off)."""
        after = self._budgets.acknowledge_after_seconds
        if after <= 0 or session.acknowledged or not self.acknowledgements:
            return None
        return max(0.0, session.quiet_since + after - self._clock.monotonic())

    async def _perform(self, session: CallSession, action: Action, deadline: float) -> Command:
        session.idle_since = self._clock.monotonic()
        session.acknowledged = True  # the agent acted: nothing to acknowledge until the callee speaks
        if isinstance(action, HangUp):
            return await self._goodbye(session, [action.text] if action.text else [], deadline)
        if isinstance(action, Press):
            self._writer.event(session.call_id, "digits", None, None, {"digits": action.digits})
            session.emit({"event": "pressed", "digits": action.digits})
            return SendDigits(action.digits, self._next_resume(session))
        if action.expect_reply:
            session.reprompts_left = self._budgets.reprompts
            return await self._ask(session, [action.text], prompt=[action.text], deadline=deadline,
                                   language=action.language)
        lines = await self._spoken(session, [action.text], deadline, action.language)
        return Say(tuple(lines), self._next_resume(session))

    async def _opt_out(self, session: CallSession, text: str, confidence: float | None,
                       deadline: float) -> Command:
        session.opted_out = True
        self._contacts.opt_out(session.to_number)
        self._writer.advance(session.call_id, session.status, opted_out=1)
        session.emit({"event": "opted-out"})
        await self._outcome(session, Outcome("reply", text, confidence))
        return await self._goodbye(session, [OPT_OUT_GOODBYE], deadline)

    def _stale(self, session: CallSession) -> str:
        """A request we no longer expect (the call moved on, or a replay of an unanswered
        one): keep the call steady, pointing at the current resume number without taking
        anything."""
        if session.ended:
            return self._transport.render(session, EndCall())
        return self._transport.render(session, Hold(session.hold_number))

    async def _outcome(self, session: CallSession, outcome: Outcome) -> None:
        session.idle_since = self._clock.monotonic()
        session.acknowledged = outcome.kind != "reply"  # a reply begins a wait that may be acknowledged
        lag = _speech_lag(session.speech.speech_timeout) if outcome.kind == "reply" else 0.0
        session.quiet_since = session.idle_since - lag  # end of speech: the provider waited `lag` to be sure
        if outcome.kind == "reply":
            session.latency_turn += 1
            self.mark(session, "callee_end", session.latency_turn, self._clock.now() - timedelta(seconds=lag))
        if self._shared is not None:
            await self._shared.outcome(session, outcome)
        else:
            await session.record_outcome(outcome)
        self._changed(session)

    async def _ask(self, session: CallSession, texts: list[str], *, prompt: list[str],
                   deadline: float, language: str | None = None, preface: Sequence[str] = ()) -> Command:
        """Say `preface` (in the call's language), then `texts` (in `language`, None: the
        call's), and listen: what the callee says is the next listening turn."""
        lines = [*await self._spoken(session, preface, deadline), *await self._spoken(session, texts, deadline, language)]
        session.gather_number += 1
        session.last_prompt, session.prompt_language = prompt, language
        if language is not None:  # a reprompt, also after a restart, asks again in it
            self._writer.event(session.call_id, PROMPT_LANGUAGE, None, None,
                               {"turn": session.gather_number, "language": language})
        return Ask(tuple(lines), session.gather_number)

    async def _goodbye(self, session: CallSession, texts: list[str], deadline: float) -> Command:
        session.hung_up_by_us = True
        return EndCall(tuple(await self._spoken(session, texts, deadline)))

    async def _spoken(self, session: CallSession, texts: Sequence[str], deadline: float,
                      language: str | None = None) -> list[Spoken]:
        """Record the lines for the transcript (written with the answer), then voice them
        (in `language` when the lines are not in the call's)."""
        session.unsaved.extend(("assistant", text, None, None) for text in texts)
        for text in texts:
            session.emit({"event": "said", "text": text})
        lines = await self._voiced(session, texts, deadline)
        if language is None:
            return lines
        return [Line(line.text, line.audio_url, language) if isinstance(line, Line) else Line(line, None, language)
                for line in lines]

    async def _voiced(self, session: CallSession, texts: Sequence[str], deadline: float) -> list[Spoken]:
        """Each line with pre-generated audio when that is ready within the budget (never past
        the request's deadline); else the text, to be <Say>ed."""
        if self._voicing is None or not texts or session.engine == "relay":  # relay: Twilio streams the voice
            return list(texts)
        from twilio_caller.audio import Audio

        budget = max(0.0, min(self._budgets.audio_seconds, deadline - self._clock.monotonic()))
        answers = await asyncio.gather(
            *(self._voicing.library.get_or_generate(text, budget) for text in texts))
        lines: list[Spoken] = []
        for text, answer in zip(texts, answers, strict=True):
            if isinstance(answer, Audio):
                lines.append(Line(text, self._voicing.url(answer)))
                continue
            if answer.reason != "disabled":
                self._writer.event(session.call_id, "audio", "fallback", None, {"text": text, **answer.to_dict()})
            lines.append(text)
        return lines

    def _deadline(self) -> float:
        return self._clock.monotonic() + ANSWER_SECONDS


def _speech_lag(speech_timeout: str) -> float:
    """How long after the callee's last word a speech result is posted: the speech timeout
    (`auto`: about a second)."""
    return float(speech_timeout) if speech_timeout.isdigit() else 1.0
