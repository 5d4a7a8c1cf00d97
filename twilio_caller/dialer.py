"""The agent's side of calls, inside the server: the one pipeline that places a call —
parser → safety → telephony, nothing around it — and say / wait / hangup / status on live
calls. Results have the architecture's shape; waiting never outlasts `timeout_seconds`."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from twilio_caller import call_request, numbers, safety, voices
from twilio_caller.call_state import CallStates, new_owner
from twilio_caller.call_status import TERMINAL, UNANSWERED
from twilio_caller.calls import CallWriter, new_call
from twilio_caller.config import Config
from twilio_caller.conversation import FAILURE_GOODBYE, MACHINES, NO_REPLY_BY_STATUS, Budgets, Conversation, Voicing
from twilio_caller.errors import InvalidInputError, NotFoundError, TelephonyError, TwilioCallerError
from twilio_caller.runtime import Runtime
from twilio_caller.settings import Settings
from twilio_caller.shared_calls import SharedCalls
from twilio_caller.store.ports import CallSnapshot, CallStateRecord
from twilio_caller.sessions import (
    UNKNOWN, Action, CallSession, HangUp, Outcome, Press, Registry, Speak, action_to_dict,
)
from twilio_caller.transport.port import CallTransport, Command, ProviderCall, Reconnect, Speech
from twilio_caller.transport.twilio.calls import Telephony
from twilio_caller.transport.twilio.relay import EngineRenderer
from twilio_caller.transport.twilio.routes import WebhookUrls
from twilio_caller.transport.twilio.transport import TwilioTransport

if TYPE_CHECKING:
    from twilio_caller.audio import AudioLibrary

log = logging.getLogger("twilio_caller.dialer")
MAX_DURATION_GRACE_SECONDS = 5
RECONCILE_GRACE_SECONDS = 60  # past ring time + max duration + this, a call is closed whatever happened
RECOVERED_GOODBYE = "Sorry, I have to go now. Goodbye."
ENDED_SESSION_KEEP_SECONDS = 900
RECONNECTED = "relay-reconnect"  # event: a dropped relay session was carried on over a new one
MAX_RECONNECTS = 3  # per call: a socket that keeps dropping ends the call with an apology


class Dialer:
    def __init__(self, runtime: Runtime, telephony: Telephony, base_url: str,
                 audio: AudioLibrary | None = None, *, real_calls: bool = False,
                 owner: str | None = None) -> None:
        self._rt = runtime
        self._real_calls = real_calls  # not simulated: the owner's identity must be set
        self.fixed_settings_guard: Callable[[Config], None] | None = None  # set by the server
        self.urls = WebhookUrls(base_url)
        self.transport: CallTransport = TwilioTransport(telephony, self.urls)
        self._writer = CallWriter(runtime.store, runtime.clock)
        self.states = CallStates(runtime.store, runtime.clock)
        self.owner = owner or new_owner()
        self._unreported: list[dict[str, Any]] = []
        self._audio = audio if audio is not None and audio.settings.voice_id else None
        self.registry = Registry()
        self._timers: set[asyncio.Task[None]] = set()
        wakeups = runtime.store.wakeups
        self._store = runtime.store
        self.shared = (SharedCalls(self._writer, self.states, wakeups, runtime.store.reader(), runtime.clock,
                                   self.owner) if wakeups.shared else None)
        self._stop_listening: Callable[[], Awaitable[None]] | None = None
        self._conversation_config = runtime.config
        self.conversation = self._conversation(runtime.config.settings)

    @property
    def _settings(self) -> Settings:
        """The settings the latest call was checked against (`check` reloads them)."""
        return self._rt.settings

    def _conversation(self, settings: Settings) -> Conversation:
        return Conversation(
            self._writer, self._rt.contacts, self._rt.clock,
            Budgets(
                hold_seconds=settings.conversation.hold_budget_seconds,
                unsteered_seconds=settings.conversation.unsteered_limit_seconds,
                reprompts=settings.gather.reprompts,
                audio_seconds=settings.elevenlabs.budget_seconds,
                acknowledge_after_seconds=settings.conversation.acknowledge_after_seconds,
            ),
            settings.identity.opening_text,
            EngineRenderer(self.transport),
            voicemail_mode=settings.voicemail.mode,
            voicing=self._voicing(),
            steer=self._steer,
            acknowledgements=settings.conversation.acknowledgements,
            shared=self.shared,
        )

    async def _steer(self, session: CallSession, resume: int) -> None:
        """Point a live call at `Ready(resume)` through the provider's API (asynchronous machine
        detection's voicemail path); a call that ended meanwhile is left as it is."""
        if session.twilio_sid is None or session.ended:
            return
        try:
            await asyncio.to_thread(self.transport.resume_at, session.twilio_sid, session, resume)
        except TwilioCallerError as exc:
            log.info("call %s: could not move it to the voicemail path: %s", session.call_id, exc.message)

    def _voicing(self) -> Voicing | None:
        library = self._audio
        if library is None:
            return None
        return Voicing(library, lambda clip: library.url_for(clip, self.urls.base_url))

    @property
    def public_url(self) -> str:
        return self.urls.base_url

    # -- placing a call: the one pipeline ----------------------------------------------------

    def check(self, arguments: Mapping[str, Any]) -> tuple[call_request.CallRequest, safety.Rules]:
        """Parse and judge a call against the rules in force now: the config file as it is
        at this moment (a broken one raises ConfigError; the old rules never apply)."""
        config = self._rt.rules_in_force()
        if self.fixed_settings_guard is not None:
            self.fixed_settings_guard(config)
        if self._real_calls:
            safety.require_identity(config)
        if config is not self._conversation_config:
            self.conversation, self._conversation_config = self._conversation(config.settings), config
        request = call_request.from_arguments(self._rt.contacts, config.settings, arguments)
        return request, safety.Rules.from_settings(config.settings)

    async def call(
        self, arguments: Mapping[str, Any], before_dial: Callable[[str], None] | None = None, *,
        streamed: bool = False,
    ) -> CallSession:
        """Place the call and return its session at once (progress can be followed on it;
        `streamed`: it is, so other instances' progress is read in too); `first_result` then
        waits for what the agent needs."""
        request, rules = await self._store.off_loop(self.check, arguments)
        call_id, token = "call_" + secrets.token_hex(8), secrets.token_urlsafe(24)
        decision, approval = await self._store.off_loop(partial(
            safety.reserve, self._rt.store.ledger, request, self._rt.clock.now(), rules, tool="call",
            new_call=new_call(call_id, token, request),
        ))
        if approval is None:
            raise decision.refusal()
        session = self._session(call_id, token, request)
        session.streamed = streamed
        send_digits = arguments.get("send_digits")
        session.digits_sent = bool(send_digits)
        detection = self._settings.voicemail.detection
        session.detecting = detection == "async" and not send_digits
        self.registry.add(session)
        await self._store.off_loop(partial(self.states.start, call_id, self.owner, approval.time_limit,
                                           async_detection=session.detecting))
        self._prune()
        session.emit({"event": "dialing", "to": request.to_name or request.to_number, "call_id": call_id})
        if before_dial is not None:
            before_dial(request.to_number)
        await self._pregenerate(request)
        ring_timeout = self._settings.twilio.ring_timeout_seconds
        try:
            placed = await asyncio.to_thread(
                self.transport.initiate, approval, session, ring_timeout=ring_timeout,
                send_digits=send_digits or None, detection=detection,
            )
        except TelephonyError as exc:
            await self._store.off_loop(self._writer.not_placed, call_id, exc.message)
            await session.end("failed")
            self.registry.discard(call_id)
            raise
        session.twilio_sid = placed.sid
        await self._store.off_loop(self._writer.placed, call_id, placed.sid, placed.status)
        self._guard_duration(session, approval.time_limit, ring_timeout)
        if session.hung_up_by_us and not session.ended:  # a hangup came while dialing: cancel now
            if session.status == "pending":
                session.status = placed.status
            await self._end_by_api(session, None)
        return session

    async def first_result(self, session: CallSession, *, wait: bool, timeout: float) -> dict[str, Any]:
        if not wait:
            return await self._result(session, [], timed_out=False)
        if session.interactive:
            ready = await session.wait_until(lambda: session.new_outcomes() or session.ended, timeout)
        else:
            ready = await session.wait_until(lambda: session.ended, timeout)
        return await self._waited(session, timed_out=not ready)

    # -- a live call ---------------------------------------------------------------------------

    async def say(self, call_id: str, message: str, expect_reply: bool, timeout: float,
                  language: str | None = None) -> dict[str, Any]:
        session = await self._live(call_id)
        text = call_request.check_message(message)
        unseen = await self._take_outcomes(session)  # reported before, or in the transcript — but for asides:
        asides = [outcome for outcome in unseen if outcome.while_waiting]
        action = Speak(text, expect_reply, language)
        session.idle_since = self._rt.clock.monotonic()
        await self._submit(session, action)
        if asides:  # said while the agent thought: this result hands them over; `wait` gets the answer
            ready = await self._delivered(action.delivered, timeout)
            if session.failure is not None:
                raise session.failure
            self.conversation.mark(session, "agent_woke", session.latency_turn)
            return await self._result(session, asides, timed_out=not ready)
        if expect_reply:
            ready = await session.wait_until(lambda: session.new_outcomes() or session.ended, timeout)
        else:
            ready = await self._delivered(action.delivered, timeout)
        return await self._waited(session, timed_out=not ready)

    async def press(self, call_id: str, digits: str) -> dict[str, Any]:
        """Send DTMF tones into a live call (a phone menu), then carry on as before."""
        session = await self._live(call_id)
        if session.status != "in-progress":
            raise InvalidInputError(f"call {call_id} is {session.status}: digits can be pressed once it is answered",
                                    field="call_id")
        action = Press(digits)
        session.idle_since = self._rt.clock.monotonic()
        if session.holding or session.engine == "relay":  # a relay call takes it on its socket
            await self._submit(session, action)
            await self._delivered(action.delivered, 5)
        elif session.twilio_sid is None:
            raise InvalidInputError(f"call {call_id} is not known to Twilio yet: try again in a moment",
                                    field="call_id")
        else:
            self._steered(session)
            await self._store.off_loop(self._writer.event, call_id, "digits", None, None, {"digits": digits})
            await asyncio.to_thread(self.transport.send_digits, session.twilio_sid, session, digits,
                                    await self._api_resume(session))
        return await self._result(session, [], timed_out=False, this_turn=False)

    async def wait(self, call_id: str, until: str, timeout: float) -> dict[str, Any]:
        session = await self.current(call_id)
        if isinstance(session, dict):
            return session
        self._steered(session)
        if until == "end":
            ready = await session.wait_until(lambda: session.ended, timeout)
            return await self._waited(session, timed_out=not ready, this_turn=False)
        ready = await session.wait_until(lambda: session.new_outcomes() or session.ended, timeout)
        return await self._waited(session, timed_out=not ready)

    async def hangup(self, call_id: str, message: str | None) -> dict[str, Any]:
        session = await self._live(call_id)
        text = call_request.check_message(message) if message else None
        if session.holding:
            action = HangUp(text)
            await self._submit(session, action)
            await self._delivered(action.delivered, 5)
        else:
            await self._end_by_api(session, text)
        await session.wait_until(lambda: session.ended, 10)
        return await self._result(session, [], timed_out=False, this_turn=False)

    def status(self, call_id: str) -> dict[str, Any]:
        found = self._session_or_record(call_id)
        if isinstance(found, dict):
            return found
        return self.result(found, [], timed_out=False, this_turn=False)

    async def _waited(self, session: CallSession, *, timed_out: bool, this_turn: bool = True) -> dict[str, Any]:
        """What a waiting tool returns; a call ended because the store refused a write gives
        that error (exit 5, the file and the fix), never a timeout."""
        if session.failure is not None:
            raise session.failure
        fresh = await self._take_outcomes(session)
        if any(outcome.kind == "reply" for outcome in fresh):
            self.conversation.mark(session, "agent_woke", session.latency_turn)
        return await self._result(session, fresh, timed_out=timed_out, this_turn=this_turn)

    async def _take_outcomes(self, session: CallSession) -> list[Outcome]:
        fresh = session.take_outcomes()
        if fresh and self.shared is not None:
            await self.shared.seen(session)  # a tool on another instance is not handed them again
        return fresh

    async def _result(self, session: CallSession, fresh: list[Outcome], *, timed_out: bool,
                      this_turn: bool = True) -> dict[str, Any]:
        """`result`, its record read off the event loop."""
        record = await self._store.off_loop(self._writer.get, session.call_id)
        assert record is not None
        return self._shaped(record, session, fresh, timed_out=timed_out, this_turn=this_turn)

    def result(self, session: CallSession, fresh: list[Outcome], *, timed_out: bool,
               this_turn: bool = True) -> dict[str, Any]:
        """The call record; with `this_turn`, `reply` is what came since the agent last heard
        (None with a reason when nothing did), else the call's latest reply overall."""
        record = self._writer.get(session.call_id)
        assert record is not None
        return self._shaped(record, session, fresh, timed_out=timed_out, this_turn=this_turn)

    @staticmethod
    def _shaped(record: dict[str, Any], session: CallSession, fresh: list[Outcome], *, timed_out: bool,
                this_turn: bool) -> dict[str, Any]:
        replies = [o for o in fresh if o.kind == "reply"]
        if replies:
            last = replies[-1]
            record["reply"] = {"text": last.text, "confidence": last.confidence, "untrusted": True}
            if last.while_waiting:
                record["reply"]["while_waiting"] = True
            record["no_reply_reason"] = None
        elif fresh:
            record["reply"], record["no_reply_reason"] = None, "no-speech"
        elif timed_out and not session.ended:
            record["reply"], record["no_reply_reason"] = None, "timeout"
        elif this_turn and session.ended and session.interactive:
            record["reply"] = None
            record["no_reply_reason"] = NO_REPLY_BY_STATUS[session.status]
        return record

    async def _pregenerate(self, request: call_request.CallRequest) -> None:
        """The opening and the message are known before dialing: voice them now, while the
        phone has not rung yet (bounded; a failure only means <Say>)."""
        if self._audio is None or request.engine == "relay":  # relay: Twilio streams every voice
            return
        seconds = self._settings.elevenlabs.pregenerate_seconds
        lines = (self.conversation.opening, request.message,
                 *(self.conversation.acknowledgements if request.keep_open else ()))
        await asyncio.gather(*(self._audio.get_or_generate(text, seconds) for text in lines))

    # -- after a crash -----------------------------------------------------------------------

    async def recover(self) -> list[str]:
        """Reconcile at start; returns the call_ids taken back. What changed is kept for the
        first `reconcile_calls` to report (a client that starts the server to ask sees it)."""
        self._unreported = await self.reconcile()
        return [change["call_id"] for change in self._unreported if change["action"] == "taken-back"]

    def take_unreported(self) -> list[dict[str, Any]]:
        changes, self._unreported = self._unreported, []
        return changes

    async def reconcile(self) -> list[dict[str, Any]]:
        """Check every call the store thinks is live, and that this server does not run, with
        Twilio: close the ones Twilio does not know (reason `unknown`) or knows as ended, take
        back the ones still live — point them at this server (its public URL may have changed)
        and let the agent steer again (keep_open), or close them politely. A call past its
        ring time + maximum duration + a grace period is closed whatever Twilio says or
        whether it answers at all. Calls another running server holds are left to it.
        Returns what changed: [{call_id, action, status, reason}]."""
        rows = self._rt.store.calls.live()
        changes = []
        for row in rows:
            ours = self._ours(row["id"])
            if ours is not None and not ours.ended and not self._overdue(row):
                continue
            if ours is None and not self.states.claim(row["id"], self.owner):
                continue  # another server runs it
            try:
                change = await self._reconcile(row, ours)
            except TwilioCallerError as exc:
                log.warning("could not reconcile call %s: %s", row["id"], exc.message)
                change = await self._close(row, "failed", "max-duration") if self._overdue(row) else None
            if change is not None:
                changes.append(change)
        return changes

    def _ours(self, call_id: str) -> CallSession | None:
        """The session of a call this server runs. Several instances on one store: a session
        here may only serve the call's requests; the call is ours by its lease."""
        session = self.registry.get(call_id)
        if session is None or self.shared is None:
            return session
        return session if self.states.load(call_id).owner == self.owner else None

    async def _reconcile(self, row: Any, ours: CallSession | None) -> dict[str, Any] | None:
        if row["twilio_sid"] is None:
            if ours is not None:
                return None  # being placed by this server right now
            self._writer.not_placed(row["id"], "the server stopped before Twilio took the call")
            self._writer.advance(row["id"], "failed", end_reason="not-placed")
            return {"call_id": row["id"], "action": "closed", "status": "failed", "reason": "not-placed"}
        try:
            state = await asyncio.to_thread(self.transport.fetch_status, row["twilio_sid"])
        except NotFoundError:  # 20404: Twilio does not know this call
            status = "completed" if row["status"] == "in-progress" else "failed"
            return await self._close(row, status, "unknown")
        if state.status in TERMINAL:
            return await self._close_as_reported(row, state, state.status)
        if self._overdue(row):
            await self._hang_up_quietly(row["twilio_sid"])
            return await self._close(row, "completed", "max-duration")
        if ours is not None:
            return None
        await self._take_back(row, state.status, state.answered_by)
        return {"call_id": row["id"], "action": "taken-back", "status": state.status, "reason": None}

    async def look_up(self, call_id: str) -> bool:
        """Whether a call this server runs is over, asked of Twilio when its own news may not
        come (a refused request: `server/refusals.py`); a call Twilio reports over is closed
        here as reconciliation closes it, with reason `webhook-refused`, and its waiting tools
        wake. A lookup that fails is logged: the call is then taken as live."""
        session = await self._store.off_loop(self._ours, call_id)
        if session is None or session.ended:
            return True
        if not session.twilio_sid:
            return False  # Twilio's answer to the create is not in yet
        try:
            state = await asyncio.to_thread(self.transport.fetch_status, session.twilio_sid)
        except TwilioCallerError as exc:
            log.warning("call %s: looking it up at Twilio: %s", call_id, exc.message)
            return False
        if state.status not in TERMINAL:
            return False
        if not session.ended:  # unless its status callback got through meanwhile
            await self._close_as_reported(await self._store.off_loop(self.row, call_id), state, "webhook-refused")
        return True

    async def _close_as_reported(self, row: Any, state: ProviderCall, reason: str) -> dict[str, Any]:
        """End the call's record as Twilio reports it ended (`state`)."""
        duration = state.duration
        return await self._close(row, state.status, reason, answered_by=state.answered_by,
                                 duration_seconds=int(duration) if duration and str(duration).isdigit() else None)

    async def _close(self, row: Any, status: str, reason: str, **fields: Any) -> dict[str, Any]:
        """End the call's record with a final status and why; tools waiting on it wake."""
        now = self._writer.advance(
            row["id"], status, end_reason=reason,
            no_reply_reason=None if row["no_reply_reason"] else NO_REPLY_BY_STATUS[status], **fields,
        )
        session = self.registry.get(row["id"])
        if session is not None and not session.ended:
            session.emit({"event": now})
            await session.end(now)
        log.info("closed call %s: %s (%s)", row["id"], now, reason)
        return {"call_id": row["id"], "action": "closed", "status": now, "reason": reason}

    def _overdue(self, row: Any) -> bool:
        from datetime import datetime, timedelta

        limit = self.states.max_seconds(row["id"]) or self._settings.safety.max_duration_seconds
        ring = self._settings.twilio.ring_timeout_seconds
        deadline = datetime.fromisoformat(row["created_at"]) + timedelta(
            seconds=limit + ring + RECONCILE_GRACE_SECONDS)
        return self._rt.clock.now() > deadline

    async def _hang_up_quietly(self, sid: str) -> None:
        """End the call at Twilio; an answer that it is over already (21220, 20404) is fine."""
        try:
            await asyncio.to_thread(self.transport.hang_up, sid, "in-progress")
        except TwilioCallerError as exc:
            log.info("hanging up %s: %s", sid, exc.message)

    async def _take_back(self, row: Any, status: str, answered_by: str | None) -> None:
        if self.shared is not None:  # every instance answers its requests already: only the lease moves
            adopted = await self.adopt(row["id"])
            self._writer.advance(row["id"], status)
            if adopted is not None:
                self._guard_rest_of_duration(row, adopted)
            return
        taken = self.registry.get(row["id"])
        if taken is not None and not taken.ended:
            return  # a relay call's handoff reached this server first and carried the call on (`claim`)
        session = self._session_from(row, status)
        self.registry.add(session)
        resume, reask, goodbye = None, None, None
        if session.status == "in-progress":  # a relay call goes on over a new socket (reattach)
            if (row["answered_by"] or answered_by) in MACHINES:
                self.fall_back_to_gather(session)  # a voicemail is left with TwiML
            voicemail = await self.conversation.taken_back(session, answered_by)
            if voicemail is not None:  # a machine: its voicemail path, made once
                resume = voicemail
            elif session.keep_open:
                reask = self.states.unanswered_gather(session.call_id)
                resume = await self._api_resume(session) if reask is None else None
            else:
                goodbye = RECOVERED_GOODBYE
                self._writer.turn(session.call_id, "assistant", RECOVERED_GOODBYE)
        # else not answered yet: it will ask for its first answer here
        try:
            await asyncio.to_thread(self.transport.reattach, row["twilio_sid"], session,
                                    resume=resume, reask=reask, goodbye=goodbye)
        except TwilioCallerError:
            self.registry.discard(row["id"])  # not ours after all: the next reconciliation tries again
            raise
        self._writer.advance(row["id"], status)
        self._guard_rest_of_duration(row, session)

    def _session_from(self, row: Any, status: str, state: CallStateRecord | None = None) -> CallSession:
        request = call_request.CallRequest(
            number=numbers.parse(row["to_number"], self._settings.phone_region),
            contact=None, message=row["message"] or "", interactive=row["mode"] == "interactive",
            keep_open=bool(row["keep_open"]), voice=row["voice"] or self._settings.voice.default,
            language=row["language"] or self._settings.voice.language, closing=None, engine=row["engine"],
        )
        session = self._session(row["id"], row["token"], request)
        session.to_name, session.twilio_sid, session.status = row["to_name"], row["twilio_sid"], status
        self.conversation.restore(session, self.states.state_of(state) if state is not None else None)
        return session

    def claim(self, row: Any) -> CallSession | None:
        """A relay call's handoff reached this server, which does not run the call (a restart,
        its reconciliation not there yet): the call is taken here — its lease claimed, its
        session made from the store as the take-back makes it — when it is live and no other
        running server holds it. The handoff's answer then carries it on; the take-back leaves
        it alone. None otherwise."""
        if row["status"] in TERMINAL or row["twilio_sid"] is None:
            return None
        session = self.registry.get(row["id"])
        if session is not None:
            return session
        if not self.states.claim(row["id"], self.owner):
            return None
        session = self._session_from(row, row["status"])
        session.detected_as = row["answered_by"]
        self.registry.add(session)
        log.info("call %s: taken back at its relay handoff", row["id"])
        return session

    def going_on(self, session: CallSession) -> Callable[[], Awaitable[Command | None]]:
        """How a relay call whose socket dropped goes on over a new session, decided when the
        handoff's answer is made (`Conversation.handed_off`): None — the call ends with an
        apology, in TwiML — when it cannot."""
        async def decide() -> Command | None:
            command = await self._reconnect(session)
            if command is None:
                self.fall_back_to_gather(session)
            return command
        return decide

    async def _reconnect(self, session: CallSession) -> Reconnect | None:
        """Where a dropped relay session goes on, as the take-back decides it: before the
        call's answer, at its answer; a listening turn the drop cut, asked again; a kept-open
        call, held for the agent at a new resume number. Not for a call that is over, a
        machine's, a notify call's, or one that dropped `MAX_RECONNECTS` times already."""
        call_id = session.call_id
        row = self.row(call_id)
        if row is None or row["status"] != "in-progress" or row["answered_by"] in MACHINES:
            return None
        if len(self._rt.store.calls.event_payloads(call_id, RECONNECTED)) >= MAX_RECONNECTS:
            return None
        reask = self.states.unanswered_gather(call_id)
        answered = self.states.answer(call_id, "voice") is not None
        if answered and reask is None and not session.keep_open:
            return None
        self._writer.event(call_id, RECONNECTED, None, None, {"reask": reask, "answered": answered})
        if not answered:
            return Reconnect()
        if reask is not None:
            return Reconnect(reask=reask)
        return Reconnect(resume=await self._api_resume(session))

    def fall_back_to_gather(self, session: CallSession) -> None:
        """A relay call goes on with TwiML (taken back after a restart, or its voicemail left
        through the Calls API): in its own voice when <Say> has it, else `voice.default`."""
        if session.engine == "gather":
            return
        session.engine = "gather"
        if voices.elevenlabs_voice(session.speech.voice) is not None:
            voice = self._settings.voice.default
            session.speech = replace(session.speech, voice=voice,
                                     language=voices.say_language(voice, session.speech.recognition_language))

    # -- helpers ---------------------------------------------------------------------------------

    def _session(self, call_id: str, token: str, request: call_request.CallRequest) -> CallSession:
        settings = self._settings
        gather = settings.gather
        speech = Speech(
            voice=request.voice,
            language=voices.say_language(request.voice, request.language),
            recognition_language=request.language,
            speech_timeout=gather.speech_timeout,
            timeout=gather.timeout,
            speech_model=gather.speech_model,
            hints=gather.hints,
            relay=settings.conversation.relay,
        )
        return CallSession(
            call_id=call_id, token=token, to_number=request.to_number, to_name=request.to_name,
            message=request.message, interactive=request.interactive, keep_open=request.keep_open,
            closing=request.closing or settings.conversation.closing,
            speech=speech, reprompts_left=gather.reprompts,
            idle_since=self._rt.clock.monotonic(), engine=request.engine, shares_progress=self.shared is not None,
        )

    async def _live(self, call_id: str) -> CallSession:
        found = await self.current(call_id)
        if isinstance(found, dict) or found.ended:
            status = found["status"] if isinstance(found, dict) else found.status
            raise InvalidInputError(f"call {call_id} has ended (status: {status})", field="call_id")
        return found

    def _session_or_record(self, call_id: str) -> CallSession | dict[str, Any]:
        session = self.registry.get(call_id)
        if session is not None:
            return session
        return self._record(call_id)

    def _record(self, call_id: str) -> dict[str, Any]:
        record = self._writer.get(call_id)
        if record is None:
            raise NotFoundError(f"no call with call_id {call_id!r} (list_calls shows recent calls)")
        return record

    async def read(self, call_id: str) -> tuple[CallSnapshot | None, int | None]:
        """Several instances on one store: the call as the store holds it (one statement, the
        loop not blocked), and the revision its session here had before the read."""
        assert self.shared is not None
        found = self.registry.get(call_id)
        revision = found.revision if found is not None else None
        return await self.shared.read(call_id), revision

    async def adopt(self, call_id: str, snapshot: CallSnapshot | None = None,
                    revision: int | None = None) -> CallSession | None:
        """Several instances on one store: the session of a call another instance placed (or
        took), made here from the store, up to date (`snapshot`: the call's, just read while its
        session here was at `revision`). None for a call the store does not know."""
        assert self.shared is not None
        if snapshot is None:
            snapshot, revision = await self.read(call_id)
        if snapshot is None:
            return None
        session = self.registry.get(call_id)
        if session is None:
            session = self._session_from(snapshot.row, snapshot.row["status"], snapshot.state)
            session.idle_since = UNKNOWN  # the unsteered budget goes on from the store's (refresh)
            self.registry.add(session)
            revision = session.revision  # made from this very snapshot
        await self.shared.refresh(session, snapshot, revision)
        return session

    def row(self, call_id: str) -> Any:
        """The call's row in the store (its token included), or None."""
        return self._rt.store.calls.get(call_id)

    async def current(self, call_id: str) -> CallSession | dict[str, Any]:
        """A call's session (adopted and brought up to date when instances share the store),
        else its record."""
        if self.shared is not None:
            snapshot, revision = await self.read(call_id)
            if snapshot is not None and (snapshot.row["status"] not in TERMINAL or self.registry.get(call_id)):
                session = await self.adopt(call_id, snapshot, revision)
                assert session is not None
                return session
        session = self.registry.get(call_id)
        if session is not None:
            return session
        return await self._store.off_loop(self._record, call_id)

    async def listen(self) -> None:
        """Several instances on one store: another's change to a call this one serves
        refreshes its session here (waiting tools and held requests wake)."""
        if self.shared is None:
            return
        self._stop_listening = await self._rt.store.wakeups.listen(self._woken)

    def _woken(self, call_id: str | None) -> None:
        found = self.registry.get(call_id) if call_id is not None else None
        for session in self.registry.all() if call_id is None else [found] if found else []:
            task = asyncio.ensure_future(self._refresh(session))
            self._timers.add(task)
            task.add_done_callback(self._timers.discard)

    async def _refresh(self, session: CallSession) -> None:
        assert self.shared is not None
        try:
            await self.shared.refresh(session)
        except TwilioCallerError as exc:
            log.warning("call %s: not refreshed from the store: %s", session.call_id, exc.message)

    def _steered(self, session: CallSession) -> None:
        """The agent steered the call: the unsteered budget starts again (on record when other
        instances answer its requests too)."""
        session.idle_since = self._rt.clock.monotonic()
        if self.shared is not None:
            self.shared.steered(session)

    async def _submit(self, session: CallSession, action: Action) -> None:
        """The action is on record before the call can take it (a restart still delivers it).
        When it cannot be recorded, the call is ended politely and the agent gets the error.
        No refresh runs meanwhile: it could read the queue without it and find it taken."""
        async with session.syncing:
            try:
                await self._store.off_loop(self.states.queue_action, session.call_id, action_to_dict(action))
            except TwilioCallerError as exc:
                session.failure = exc
                session.submit(HangUp(FAILURE_GOODBYE))  # the held request says goodbye, unrecorded
                raise
            session.submit(action)
            session.revision += 1
        self.conversation.mark(session, "agent_said", session.latency_turn)
        if self.shared is not None:
            self.shared.changed(session)  # the instance holding the call's request takes it

    async def _api_resume(self, session: CallSession) -> int:
        """A resume number (Twilio: a hold URL) for a command given through the provider's
        API, not as a request's answer: issued in the store first."""
        session.hold_number = await self._store.off_loop(self.states.issue_hold, session.call_id)
        return session.hold_number

    @staticmethod
    async def _delivered(delivered: asyncio.Event, timeout: float) -> bool:
        """True once the held webhook request took the action (or the call ended)."""
        try:
            await asyncio.wait_for(delivered.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _end_by_api(self, session: CallSession, text: str | None) -> None:
        answered = session.status not in UNANSWERED
        if answered and text:
            await self._store.off_loop(self._writer.turn, session.call_id, "assistant", text)
        session.hung_up_by_us = True
        if session.twilio_sid:
            await asyncio.to_thread(self.transport.hang_up, session.twilio_sid, session.status, session, text)

    def _guard_duration(self, session: CallSession, limit: int, ring_timeout: int) -> None:
        """Twilio's TimeLimit ends the call `limit` seconds after the answer; should it not, the
        server does, the grace later. The count starts when the answer is heard (ringing takes
        nothing from the talk) or, none heard, when the ring time and the grace are over."""
        async def guard() -> None:
            await session.wait_until(lambda: session.ended or session.status not in UNANSWERED,
                                     ring_timeout + MAX_DURATION_GRACE_SECONDS)
            if session.ended:
                return
            await self._hang_up_after(session, limit + MAX_DURATION_GRACE_SECONDS)

        self.background(guard())

    def _guard_rest_of_duration(self, row: Any, session: CallSession) -> None:
        """A call taken over: its maximum duration is guarded here now, to the latest moment it
        could be due where it was placed (placed + ring time + limit + grace; when it was
        answered is not on record), not restarted."""
        limit = self.states.max_seconds(row["id"]) or self._settings.safety.max_duration_seconds
        since = (self._rt.clock.now() - datetime.fromisoformat(row["created_at"])).total_seconds()
        due = limit + self._settings.twilio.ring_timeout_seconds + MAX_DURATION_GRACE_SECONDS - since
        self.background(self._hang_up_after(session, max(0.0, due)))

    async def _hang_up_after(self, session: CallSession, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if not session.ended and session.twilio_sid:
            await self._hang_up_quietly(session.twilio_sid)

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on the server's loop until it ends or the dialer closes."""
        task = asyncio.create_task(work)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def _prune(self) -> None:
        now = self._rt.clock.monotonic()
        for session in [s for s in self.registry.all() if s.ended]:
            if now - session.idle_since > ENDED_SESSION_KEEP_SECONDS:
                self.registry.discard(session.call_id)

    def renew_leases(self) -> None:
        self.states.renew([session.call_id for session in self.registry.live()], self.owner)

    async def close(self) -> None:
        if self._stop_listening is not None:
            await self._stop_listening()
        if self.shared is not None:
            await self.shared.close()
        for task in list(self._timers):
            task.cancel()
        self.states.release([session.call_id for session in self.registry.all()], self.owner)
