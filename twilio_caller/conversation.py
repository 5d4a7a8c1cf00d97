"""The webhook side of a live call: Twilio's requests (voice, gather, hold, status) → the
TwiML that answers them. Every turn and status change is written to the store before the
answer goes back; the agent's waiting tool calls are woken through the session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from twilio_caller import twiml
from twilio_caller.calls import TERMINAL_STATUSES, CallWriter
from twilio_caller.clock import Clock
from twilio_caller.contacts import ContactBook
from twilio_caller.safety import is_opt_out
from twilio_caller.sessions import Action, CallSession, HangUp, Outcome

NOTIFY_GOODBYE = "Goodbye."
SILENCE_GOODBYE = "Sorry I couldn't hear you. Goodbye."
REPROMPT = "Sorry, I didn't catch that."
OPT_OUT_GOODBYE = "Understood. You won't get calls from me again. Goodbye."
NO_REPLY_BY_STATUS = {"busy": "busy", "no-answer": "no-answer", "failed": "failed",
                      "canceled": "canceled", "completed": "hung-up"}


@dataclass(frozen=True)
class Budgets:
    hold_seconds: float
    unsteered_seconds: float
    reprompts: int


class Conversation:
    def __init__(
        self,
        writer: CallWriter,
        contacts: ContactBook,
        clock: Clock,
        budgets: Budgets,
        opening: str,
        url_for: Callable[[CallSession, str, Mapping[str, str]], str],
    ) -> None:
        self._writer = writer
        self._contacts = contacts
        self._clock = clock
        self._budgets = budgets
        self._opening = opening
        self._url_for = url_for

    async def voice(self, session: CallSession) -> str:
        return await self._once(session, "voice", lambda: self._open(session))

    async def gather(self, session: CallSession, number: int, speech: str | None,
                     confidence: float | None, dedupe_key: str) -> str:
        if number != session.gather_number and f"gather:{number}" not in session.answers:
            return await self._stale(session)
        return await self._once(
            session, f"gather:{number}",
            lambda: self._heard(session, speech, confidence, dedupe_key),
        )

    async def hold(self, session: CallSession) -> str:
        if session.ended:
            return twiml.notify(session.speech, [])
        return await self._wait_for_agent(session)

    async def status(self, session: CallSession, status: str, sequence: int | None,
                     params: Mapping[str, str]) -> None:
        if not self._writer.event(session.call_id, "status", status, sequence, dict(params)):
            return  # a duplicate callback changes nothing
        duration = params.get("CallDuration")
        now = self._writer.advance(
            session.call_id, status,
            answered_by=params.get("AnsweredBy"),
            duration_seconds=int(duration) if duration and duration.isdigit() else None,
        )
        if now in TERMINAL_STATUSES and not session.ended:
            if not session.outcomes:  # else the outcome already said reply or no-speech
                reason = None if not session.interactive and now == "completed" else NO_REPLY_BY_STATUS[now]
                self._writer.advance(session.call_id, now, no_reply_reason=reason)
            session.emit({"event": now})
            await session.end(now)
        elif now != session.status:
            session.status = now
            session.emit({"event": "answered" if now == "in-progress" else now})
            await session.notify()

    async def _once(self, session: CallSession, key: str, answer: Callable[[], Awaitable[str]]) -> str:
        """The first request computes the answer; a retry or replay gets the same TwiML."""
        pending = session.answers.get(key)
        if pending is None:
            pending = asyncio.ensure_future(answer())
            session.answers[key] = pending
        return await asyncio.shield(pending)

    async def _open(self, session: CallSession) -> str:
        lines = [self._opening, session.message]
        self._say(session, lines)
        if not session.interactive:
            self._say(session, [NOTIFY_GOODBYE])
            session.hung_up_by_us = True
            return twiml.notify(session.speech, [*lines, NOTIFY_GOODBYE])
        return self._ask(session, lines, prompt=[session.message])

    async def _heard(self, session: CallSession, speech: str | None, confidence: float | None,
                     dedupe_key: str) -> str:
        text = " ".join((speech or "").split())
        if text:
            self._writer.turn(session.call_id, "callee", text, confidence, dedupe_key)
            session.emit({"event": "heard", "text": text, "confidence": confidence})
            if is_opt_out(text):
                return await self._opt_out(session, text, confidence)
            await self._outcome(session, Outcome("reply", text, confidence))
            return await self._after_listening(session, heard=True)
        if session.reprompts_left > 0:
            session.reprompts_left -= 1
            self._say(session, [REPROMPT, *session.last_prompt])
            return self._ask(session, [REPROMPT, *session.last_prompt], prompt=session.last_prompt)
        self._writer.advance(session.call_id, session.status, no_reply_reason="no-speech")
        session.emit({"event": "silence"})
        await self._outcome(session, Outcome("no-speech"))
        return await self._after_listening(session, heard=False)

    async def _after_listening(self, session: CallSession, *, heard: bool) -> str:
        if session.keep_open:
            return await self._wait_for_agent(session)
        return self._goodbye(session, session.closing if heard else SILENCE_GOODBYE)

    async def _wait_for_agent(self, session: CallSession) -> str:
        idle = self._clock.monotonic() - session.idle_since
        remaining = self._budgets.unsteered_seconds - idle
        if remaining <= 0:
            session.emit({"event": "unsteered"})
            return self._goodbye(session, session.closing)
        action = await session.next_action(min(self._budgets.hold_seconds, remaining))
        if action is None:
            return twiml.hold(self._url_for(session, "hold", {}))
        return self._perform(session, action)

    def _perform(self, session: CallSession, action: Action) -> str:
        session.idle_since = self._clock.monotonic()
        if isinstance(action, HangUp):
            answer = self._goodbye(session, action.text)
        elif action.expect_reply:
            session.reprompts_left = self._budgets.reprompts
            self._say(session, [action.text])
            answer = self._ask(session, [action.text], prompt=[action.text])
        else:
            self._say(session, [action.text])
            answer = twiml.say_then_hold(session.speech, [action.text], self._url_for(session, "hold", {}))
        action.delivered.set()
        return answer

    async def _opt_out(self, session: CallSession, text: str, confidence: float | None) -> str:
        session.opted_out = True
        self._contacts.opt_out(session.to_number)
        self._writer.advance(session.call_id, session.status, opted_out=1)
        session.emit({"event": "opted-out"})
        await self._outcome(session, Outcome("reply", text, confidence))
        return self._goodbye(session, OPT_OUT_GOODBYE)

    async def _stale(self, session: CallSession) -> str:
        """A Gather result we no longer expect (the call moved on): keep the call steady."""
        if session.ended:
            return twiml.notify(session.speech, [])
        return twiml.hold(self._url_for(session, "hold", {}))

    async def _outcome(self, session: CallSession, outcome: Outcome) -> None:
        session.idle_since = self._clock.monotonic()
        await session.record_outcome(outcome)

    def _ask(self, session: CallSession, lines: list[str], *, prompt: list[str]) -> str:
        session.gather_number += 1
        session.last_prompt = prompt
        action = self._url_for(session, "gather", {"n": str(session.gather_number)})
        return twiml.ask(session.speech, lines, action)

    def _goodbye(self, session: CallSession, text: str | None) -> str:
        session.hung_up_by_us = True
        if text:
            self._say(session, [text])
        return twiml.notify(session.speech, [text] if text else [])

    def _say(self, session: CallSession, lines: list[str]) -> None:
        for line in lines:
            self._writer.turn(session.call_id, "assistant", line)
            session.emit({"event": "said", "text": line})
