"""The agent's side of calls, inside the server: the one pipeline that places a call —
parser → safety → telephony, nothing around it — and say / wait / hangup / status on live
calls. Results have the architecture's shape; waiting never outlasts `timeout_seconds`."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from twilio_caller import numbers, parser, safety, twiml, voices
from twilio_caller.calls import TERMINAL_STATUSES, CallWriter
from twilio_caller.config import Config
from twilio_caller.conversation import NO_REPLY_BY_STATUS, Budgets, Conversation, Voicing
from twilio_caller.errors import InvalidInputError, NotFoundError, TelephonyError, TwilioCallerError
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import CallSession, HangUp, Outcome, Press, Registry, Speak
from twilio_caller.telephony import Telephony

if TYPE_CHECKING:
    from twilio_caller.audio import AudioLibrary

log = logging.getLogger("twilio_caller.dialer")
MAX_DURATION_GRACE_SECONDS = 5
RECOVERED_GOODBYE = "Sorry, I have to go now. Goodbye."
ENDED_SESSION_KEEP_SECONDS = 900


class Dialer:
    def __init__(self, runtime: Runtime, telephony: Telephony, base_url: str,
                 audio: AudioLibrary | None = None, *, real_calls: bool = False) -> None:
        self._rt = runtime
        self._real_calls = real_calls  # not simulated: the owner's identity must be set
        self._telephony = telephony
        self._base_url = base_url.rstrip("/")
        self._writer = CallWriter(runtime.store, runtime.clock)
        self._audio = audio if audio is not None and audio.settings.voice_id else None
        self.registry = Registry()
        self._timers: set[asyncio.Task[None]] = set()
        self._conversation_config = runtime.config
        self.conversation = self._conversation(runtime.config)

    @property
    def _config(self) -> Config:
        """The config the latest call was checked against (`check` reloads it)."""
        return self._rt.config

    def _conversation(self, config: Config) -> Conversation:
        return Conversation(
            self._writer, self._rt.contacts, self._rt.clock,
            Budgets(
                hold_seconds=config.get("conversation.hold_budget_seconds"),
                unsteered_seconds=config.get("conversation.unsteered_limit_seconds"),
                reprompts=config.get("gather.reprompts"),
                audio_seconds=config.get("elevenlabs.budget_seconds"),
            ),
            safety.opening_text(config),
            self.url_for,
            voicemail_mode=config.get("voicemail.mode"),
            voicing=self._voicing(),
        )

    def _voicing(self) -> Voicing | None:
        library = self._audio
        if library is None:
            return None
        return Voicing(library, lambda clip: library.url_for(clip, self._base_url))

    @property
    def public_url(self) -> str:
        return self._base_url

    def url_for(self, session: CallSession, route: str, query: Mapping[str, str]) -> str:
        url = f"{self._base_url}/twilio/{session.call_id}/{session.token}/{route}"
        return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")

    # -- placing a call: the one pipeline ----------------------------------------------------

    def check(self, arguments: Mapping[str, Any]) -> tuple[parser.CallRequest, safety.Rules]:
        """Parse and judge a call against the rules in force now: the config file as it is
        at this moment (a broken one raises ConfigError; the old rules never apply)."""
        config = self._rt.rules_in_force()
        if self._real_calls:
            safety.require_identity(config)
        if config is not self._conversation_config:
            self.conversation, self._conversation_config = self._conversation(config), config
        request = parser.from_arguments(self._rt.contacts, config, arguments)
        return request, safety.Rules.from_config(config)

    async def call(
        self, arguments: Mapping[str, Any], before_dial: Callable[[str], None] | None = None
    ) -> CallSession:
        """Place the call and return its session at once (progress can be followed on it);
        `first_result` then waits for what the agent needs."""
        request, rules = self.check(arguments)
        call_id, token = "call_" + secrets.token_hex(8), secrets.token_urlsafe(24)
        decision, approval = safety.reserve(
            self._rt.store, request, self._rt.clock.now(), rules, tool="call",
            record_call=lambda connection: self._record(connection, call_id, token, request),
        )
        if approval is None:
            raise decision.refusal()
        session = self._session(call_id, token, request)
        self.registry.add(session)
        self._prune()
        session.emit({"event": "dialing", "to": request.to_name or request.to_number})
        if before_dial is not None:
            before_dial(request.to_number)
        await self._pregenerate(request)
        send_digits = arguments.get("send_digits")
        session.digits_sent = bool(send_digits)
        extra = {"send_digits": send_digits} if send_digits else {"machine_detection": "DetectMessageEnd"}
        try:
            placed = await asyncio.to_thread(
                self._telephony.create_call, approval,
                url=self.url_for(session, "voice", {}),
                status_callback=self.url_for(session, "status", {}),
                ring_timeout=self._config.get("twilio.ring_timeout_seconds"),
                extra=extra,
            )
        except TelephonyError as exc:
            self._writer.not_placed(call_id, exc.message)
            await session.end("failed")
            self.registry.discard(call_id)
            raise
        session.twilio_sid = placed.sid
        self._writer.placed(call_id, placed.sid, placed.status)
        self._guard_duration(session, approval.time_limit)
        return session

    async def first_result(self, session: CallSession, *, wait: bool, timeout: float) -> dict[str, Any]:
        if not wait:
            return self.result(session, [], timed_out=False)
        if session.interactive:
            ready = await session.wait_until(lambda: session.new_outcomes() or session.ended, timeout)
        else:
            ready = await session.wait_until(lambda: session.ended, timeout)
        return self.result(session, session.take_outcomes(), timed_out=not ready)

    # -- a live call ---------------------------------------------------------------------------

    async def say(self, call_id: str, message: str, expect_reply: bool, timeout: float) -> dict[str, Any]:
        session = self._live(call_id)
        text = parser.check_message(message)
        session.take_outcomes()  # what came before this turn was already reported or is in the transcript
        action = Speak(text, expect_reply)
        session.idle_since = self._rt.clock.monotonic()
        session.submit(action)
        if expect_reply:
            ready = await session.wait_until(lambda: session.new_outcomes() or session.ended, timeout)
        else:
            ready = await self._delivered(action.delivered, timeout)
        return self.result(session, session.take_outcomes(), timed_out=not ready)

    async def press(self, call_id: str, digits: str) -> dict[str, Any]:
        """Send DTMF tones into a live call (a phone menu), then carry on as before."""
        session = self._live(call_id)
        if session.status != "in-progress":
            raise InvalidInputError(f"call {call_id} is {session.status}: digits can be pressed once it is answered",
                                    field="call_id")
        action = Press(digits)
        session.idle_since = self._rt.clock.monotonic()
        if session.holding:
            session.submit(action)
            await self._delivered(action.delivered, 5)
        elif session.twilio_sid is None:
            raise InvalidInputError(f"call {call_id} is not known to Twilio yet: try again in a moment",
                                    field="call_id")
        else:
            self._writer.event(call_id, "digits", None, None, {"digits": digits})
            document = twiml.press(digits, self.url_for(session, "hold", {}))
            await asyncio.to_thread(self._telephony.update_call, session.twilio_sid, twiml=document)
        return self.result(session, [], timed_out=False, this_turn=False)

    async def wait(self, call_id: str, until: str, timeout: float) -> dict[str, Any]:
        session = self._session_or_record(call_id)
        if isinstance(session, dict):
            return session
        session.idle_since = self._rt.clock.monotonic()
        if until == "end":
            ready = await session.wait_until(lambda: session.ended, timeout)
            return self.result(session, session.take_outcomes(), timed_out=not ready, this_turn=False)
        ready = await session.wait_until(lambda: session.new_outcomes() or session.ended, timeout)
        return self.result(session, session.take_outcomes(), timed_out=not ready)

    async def hangup(self, call_id: str, message: str | None) -> dict[str, Any]:
        session = self._live(call_id)
        text = parser.check_message(message) if message else None
        if session.holding:
            action = HangUp(text)
            session.submit(action)
            await self._delivered(action.delivered, 5)
        else:
            await self._end_by_api(session, text)
        await session.wait_until(lambda: session.ended, 10)
        return self.result(session, [], timed_out=False, this_turn=False)

    def status(self, call_id: str) -> dict[str, Any]:
        found = self._session_or_record(call_id)
        if isinstance(found, dict):
            return found
        return self.result(found, [], timed_out=False, this_turn=False)

    def result(self, session: CallSession, fresh: list[Outcome], *, timed_out: bool,
               this_turn: bool = True) -> dict[str, Any]:
        """The call record; with `this_turn`, `reply` is what came since the agent last heard
        (None with a reason when nothing did), else the call's latest reply overall."""
        record = self._writer.get(session.call_id)
        assert record is not None
        replies = [o for o in fresh if o.kind == "reply"]
        if replies:
            last = replies[-1]
            record["reply"] = {"text": last.text, "confidence": last.confidence, "untrusted": True}
            record["no_reply_reason"] = None
        elif fresh:
            record["reply"], record["no_reply_reason"] = None, "no-speech"
        elif timed_out and not session.ended:
            record["reply"], record["no_reply_reason"] = None, "timeout"
        elif this_turn and session.ended and session.interactive:
            record["reply"] = None
            record["no_reply_reason"] = NO_REPLY_BY_STATUS[session.status]
        return record

    async def _pregenerate(self, request: parser.CallRequest) -> None:
        """The opening and the message are known before dialing: voice them now, while the
        phone has not rung yet (bounded; a failure only means <Say>)."""
        if self._audio is None:
            return
        seconds = self._config.get("elevenlabs.pregenerate_seconds")
        await asyncio.gather(*(self._audio.get_or_generate(text, seconds)
                               for text in (self.conversation.opening, request.message)))

    # -- after a crash -----------------------------------------------------------------------

    async def recover(self) -> list[str]:
        """Reconcile the calls the store says are live with Twilio: complete the records of
        calls that ended while no server ran, and take back the ones still live — point them
        at this server (its public URL may have changed) and let the agent steer again
        (keep_open), or close them politely. Returns the call_ids taken back."""
        rows = self._rt.store.query(
            "SELECT * FROM calls WHERE placed = 1 AND status IN "
            f"({', '.join('?' * len(safety.LIVE_STATUSES))})", safety.LIVE_STATUSES,
        )
        taken_back = []
        for row in rows:
            try:
                if await self._recover(row):
                    taken_back.append(row["id"])
            except TwilioCallerError as exc:
                log.warning("could not reconcile call %s: %s", row["id"], exc.message)
        return taken_back

    async def _recover(self, row: Any) -> bool:
        if row["twilio_sid"] is None:
            self._writer.not_placed(row["id"], "the server stopped before Twilio took the call")
            return False
        state = await asyncio.to_thread(self._telephony.fetch_call, row["twilio_sid"])
        if state["status"] in TERMINAL_STATUSES:
            duration = state["duration"]
            self._writer.advance(
                row["id"], state["status"], answered_by=state["answered_by"],
                duration_seconds=int(duration) if duration and str(duration).isdigit() else None,
                no_reply_reason=None if row["no_reply_reason"] else NO_REPLY_BY_STATUS[state["status"]],
            )
            return False
        session = self._session_from(row, state["status"])
        self.registry.add(session)
        if session.status == "in-progress":
            fields = (
                {"url": self.url_for(session, "hold", {}), "method": "POST"} if session.keep_open
                else {"twiml": twiml.notify(session.speech, [RECOVERED_GOODBYE])}
            )
            if not session.keep_open:
                self._writer.turn(session.call_id, "assistant", RECOVERED_GOODBYE)
        else:  # not answered yet: it will ask for its first TwiML here
            fields = {"url": self.url_for(session, "voice", {}), "method": "POST"}
        fields.update(status_callback=self.url_for(session, "status", {}), status_callback_method="POST")
        await asyncio.to_thread(self._telephony.update_call, row["twilio_sid"], **fields)
        self._writer.advance(row["id"], state["status"])
        return True

    def _session_from(self, row: Any, status: str) -> CallSession:
        request = parser.CallRequest(
            number=numbers.parse(row["to_number"], self._config.get("phone_region")),
            contact=None, message=row["message"] or "", interactive=row["mode"] == "interactive",
            keep_open=bool(row["keep_open"]), voice=row["voice"] or self._config.get("voice.default"),
            language=row["language"] or self._config.get("voice.language"), closing=None,
        )
        session = self._session(row["id"], row["token"], request)
        session.to_name, session.twilio_sid, session.status = row["to_name"], row["twilio_sid"], status
        return session

    # -- helpers ---------------------------------------------------------------------------------

    def _record(self, connection: Any, call_id: str, token: str, request: parser.CallRequest) -> str:
        self._writer.insert(connection, {
            "id": call_id, "token": token,
            "contact_id": request.contact.id if request.contact else None,
            "to_name": request.to_name, "to_number": request.to_number,
            "message": request.message, "mode": "interactive" if request.interactive else "notify",
            "keep_open": int(request.keep_open), "voice": request.voice, "language": request.language,
        })
        return call_id

    def _session(self, call_id: str, token: str, request: parser.CallRequest) -> CallSession:
        def gather(key: str) -> Any:
            return self._config.get(f"gather.{key}")

        speech = twiml.Speech(
            voice=request.voice,
            language=voices.say_language(request.voice, request.language),
            recognition_language=request.language,
            speech_timeout=str(gather("speech_timeout")),
            timeout=gather("timeout"),
            speech_model=gather("speech_model"),
            hints=tuple(gather("hints")),
        )
        return CallSession(
            call_id=call_id, token=token, to_number=request.to_number, to_name=request.to_name,
            message=request.message, interactive=request.interactive, keep_open=request.keep_open,
            closing=request.closing or self._config.get("conversation.closing"),
            speech=speech, reprompts_left=gather("reprompts"),
            idle_since=self._rt.clock.monotonic(),
        )

    def _live(self, call_id: str) -> CallSession:
        found = self._session_or_record(call_id)
        if isinstance(found, dict) or found.ended:
            status = found["status"] if isinstance(found, dict) else found.status
            raise InvalidInputError(f"call {call_id} has ended (status: {status})", field="call_id")
        return found

    def _session_or_record(self, call_id: str) -> CallSession | dict[str, Any]:
        session = self.registry.get(call_id)
        if session is not None:
            return session
        record = self._writer.get(call_id)
        if record is None:
            raise NotFoundError(f"no call with call_id {call_id!r} (list_calls shows recent calls)")
        return record

    @staticmethod
    async def _delivered(delivered: asyncio.Event, timeout: float) -> bool:
        """True once the held webhook request took the action (or the call ended)."""
        try:
            await asyncio.wait_for(delivered.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _end_by_api(self, session: CallSession, text: str | None) -> None:
        if session.status in ("pending", "queued", "initiated", "ringing"):
            fields: dict[str, Any] = {"status": "canceled" if session.status != "pending" else "completed"}
        elif text:
            self._writer.turn(session.call_id, "assistant", text)
            fields = {"twiml": twiml.notify(session.speech, [text])}
        else:
            fields = {"status": "completed"}
        session.hung_up_by_us = True
        if session.twilio_sid:
            await asyncio.to_thread(self._telephony.update_call, session.twilio_sid, **fields)

    def _guard_duration(self, session: CallSession, limit: int) -> None:
        """Twilio's TimeLimit ends the call; should it not, the server does."""
        async def guard() -> None:
            await asyncio.sleep(limit + MAX_DURATION_GRACE_SECONDS)
            if not session.ended and session.twilio_sid:
                await asyncio.to_thread(self._telephony.update_call, session.twilio_sid, status="completed")

        task = asyncio.create_task(guard())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def _prune(self) -> None:
        now = self._rt.clock.monotonic()
        for session in [s for s in self.registry.all() if s.ended]:
            if now - session.idle_since > ENDED_SESSION_KEEP_SECONDS:
                self.registry.discard(session.call_id)

    async def close(self) -> None:
        for task in list(self._timers):
            task.cancel()
