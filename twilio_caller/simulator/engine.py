"""The voice engine: the life Twilio gives one outbound call, from queued to its end,
with the application's TwiML, the callee's script and the call's timeline."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, Union
from urllib.parse import urljoin, urlsplit

from twilio_caller.clock import Clock
from twilio_caller.simulator.callbacks import StatusCallbacks
from twilio_caller.simulator.callee import CalleeProfile, Conversation, Digits, HangUp, Reply, Silence, Speech
from twilio_caller.simulator.chaos import Chaos
from twilio_caller.simulator.errors import (
    CALLBACK_WARNING,
    INVALID_URL_FORMAT,
    SCHEMA_WARNING,
    CallFailure,
)
from twilio_caller.simulator.ids import new_sid, rfc2822
from twilio_caller.simulator.records import API_VERSION, CallError, CallRecord, Utterance, WebhookRequest
from twilio_caller.simulator.timeline import DeadlineReached, Timeline, speech_seconds
from twilio_caller.simulator import relay
from twilio_caller.simulator.twiml import (
    ConversationRelay, Document, Gather, Hangup, Pause, Play, Record, Redirect, Say, Verb, parse,
)
from twilio_caller.simulator.webhook import Sent, WebhookClient

logger = logging.getLogger(__name__)
T = TypeVar("T")

APPLICATION_ERROR = "We're sorry, an application error has occurred. Goodbye."
DIAL_SECONDS = 1.0
REPLY_DELAY_SECONDS = 0.5
DIGIT_SECONDS = 0.3
WAIT_SECONDS = 0.5  # a `w` in SendDigits or <Play digits>
HUMAN_DETECTION_SECONDS = 2.2  # "Hello?" then 1.2 s of silence
MACHINE_START_SECONDS = 2.4  # continuous speech longer than the 2400 ms threshold
MACHINE_END_SILENCE_SECONDS = 1.5
FOREVER_LOOPS = 1000  # loop="0": until the call ends
SIP_RESPONSE = {"completed": "200", "busy": "486", "no-answer": "487", "canceled": "487", "failed": "500"}


@dataclass(frozen=True)
class EngineContext:
    webhooks: WebhookClient
    chaos: Chaos
    clock: Clock
    time_scale: float
    observe: Callable[[CallRecord, WebhookRequest], None] = lambda record, request: None


@dataclass(frozen=True)
class Source:
    """Where the next TwiML document comes from."""

    purpose: str  # voice | fallback | action | redirect | update
    url: str | None = None
    method: str = "POST"
    params: Mapping[str, str] = field(default_factory=dict)
    twiml: str | None = None


class _Ended(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Interrupt = Union[Source, str]  # a Source (redirect), "hangup" or "cancel"


class _Interrupted(Exception):
    def __init__(self, interrupt: Interrupt) -> None:
        super().__init__(repr(interrupt))
        self.interrupt = interrupt


class CallEngine:
    def __init__(self, record: CallRecord, callee: CalleeProfile, context: EngineContext) -> None:
        self.record = record
        self._callee = callee
        self._conversation: Conversation = callee.start_conversation()
        self._context = context
        self._timeline = Timeline(record.date_created, context.time_scale, context.clock)
        self._callbacks = StatusCallbacks(record, context.chaos, self._deliver_callback)
        self._answered_at: float | None = None
        self._unanswered: list[str] = []
        self._interrupt: Interrupt | None = None
        self._step: asyncio.Task[Any] | None = None
        self._amd_task: asyncio.Task[None] | None = None

    # -- control from the REST API (called in the serving loop) --------------------------

    @property
    def answered(self) -> bool:
        return self._answered_at is not None

    def redirect(self, source: Source) -> None:
        self._steer(source)

    def hang_up(self) -> None:
        self._steer("hangup")

    def cancel(self) -> None:
        if not self.answered:
            self._steer("cancel")

    def change_time_limit(self, seconds: int) -> None:
        if self._answered_at is not None and not self._context.chaos.ignore_time_limit:
            self._timeline.set_deadline(self._answered_at + seconds)

    def _steer(self, interrupt: Interrupt) -> None:
        self._interrupt = interrupt
        if self._step is not None:
            self._step.cancel()

    # -- the call ------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._live()
        except asyncio.CancelledError:
            self._finish("failed", "simulator-stopped")
            self._callbacks.cancel()
            raise
        except Exception as error:  # a simulator bug must not take the server down
            logger.exception("call %s crashed", self.record.sid)
            self._record_error(CallFailure(0, f"simulator error: {error!r}"))
            self._finish("completed" if self.answered else "failed", "simulator-error")
        finally:
            await self._wind_down()

    async def _live(self) -> None:
        try:
            if await self._steered(self._dial()):
                await self._converse()
        except _Interrupted as interrupted:
            self._on_interrupted(interrupted.interrupt)
        except _Ended as ended:
            self._finish("completed", ended.reason)
        except DeadlineReached:
            self._finish("completed", "time-limit")

    def _on_interrupted(self, interrupt: Interrupt) -> None:
        if self.answered:
            self._finish("completed", "api-hangup")
        else:
            self._finish("canceled", "api-cancel")

    async def _wind_down(self) -> None:
        if self._amd_task is not None:
            self._amd_task.cancel()
            await asyncio.gather(self._amd_task, return_exceptions=True)
        try:
            await self._callbacks.drain()
        finally:
            await self._context.webhooks.aclose()
            self.record.finished.set()

    async def _steered(self, work: Coroutine[Any, Any, T]) -> T:
        """Run one step that an API update may interrupt."""
        if self._interrupt is not None:
            work.close()
            raise _Interrupted(self._take_interrupt())
        step: asyncio.Task[T] = asyncio.create_task(work)
        self._step = step
        try:
            return await step
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._interrupt is None or (current is not None and current.cancelling()):
                raise
            raise _Interrupted(self._take_interrupt()) from None
        finally:
            self._step = None

    def _take_interrupt(self) -> Interrupt:
        interrupt, self._interrupt = self._interrupt, None
        assert interrupt is not None
        return interrupt

    # -- dialing -------------------------------------------------------------------------

    async def _dial(self) -> bool:
        self.record.start_time = self._timeline.now()
        self._callbacks.emit("initiated", self._progress_params("initiated"))
        await self._timeline.pass_time(DIAL_SECONDS)
        answer = self._callee.answer
        if answer in ("busy", "failed"):
            self._finish(answer, answer)
            return False
        self._set_status("ringing")
        self._callbacks.emit("ringing", self._progress_params("ringing"))
        ring = self._callee.ring_seconds if answer in ("human", "machine") else math.inf
        timeout = self.record.options.timeout
        if ring >= timeout:
            await self._timeline.pass_time(timeout)
            self._finish("no-answer", "no-answer")
            return False
        await self._timeline.pass_time(ring)
        return True

    # -- the conversation ----------------------------------------------------------------

    async def _converse(self) -> None:
        self._answer()
        await self._steered(self._send_digits())
        detected = await self._steered(self._detect_machine())
        source: Source | None = self._first_source(detected)
        while source is not None:
            try:
                source = await self._steered(self._execute(source))
            except _Interrupted as interrupted:
                if not isinstance(interrupted.interrupt, Source):
                    raise
                source = interrupted.interrupt
        self._finish("completed", "end-of-twiml")

    def _answer(self) -> None:
        self._answered_at = self._timeline.elapsed
        self.record.answered_at = self._timeline.now()
        self._set_status("in-progress")
        if not self._context.chaos.ignore_time_limit:
            self._timeline.set_deadline(self._answered_at + self.record.options.time_limit)
        self._callbacks.emit("answered", self._progress_params("in-progress"))

    def _first_source(self, detected: dict[str, str]) -> Source:
        options = self.record.options
        if options.url is not None:
            return Source("voice", options.url, options.method, detected)
        return Source("voice", twiml=options.twiml)

    async def _send_digits(self) -> None:
        digits = self.record.options.send_digits
        if digits:
            await self._play_digits(digits)

    async def _play_digits(self, digits: str) -> None:
        self.record.sent_digits.append(digits)
        self._hear("digits", digits)
        for key in digits:
            await self._timeline.pass_time(WAIT_SECONDS if key == "w" else DIGIT_SECONDS)

    # -- answering-machine detection -----------------------------------------------------

    def _detection_enabled(self) -> bool:
        options = self.record.options
        return options.machine_detection in ("Enable", "DetectMessageEnd") and not options.send_digits

    def _detection(self) -> tuple[str, float]:
        answer, mode = self._callee.answer, self.record.options.machine_detection
        if answer == "human":
            result, seconds = "human", HUMAN_DETECTION_SECONDS
        elif mode == "Enable":
            result, seconds = "machine_start", MACHINE_START_SECONDS
        elif self._callee.beep:
            result, seconds = "machine_end_beep", self._callee.greeting_seconds
        else:
            result, seconds = "machine_end_silence", self._callee.greeting_seconds + MACHINE_END_SILENCE_SECONDS
        limit = float(self.record.options.machine_detection_timeout)
        return ("unknown", limit) if seconds > limit else (result, seconds)

    async def _detect_machine(self) -> dict[str, str]:
        if not self._detection_enabled():
            return {}
        if self.record.options.async_amd:
            self._amd_task = asyncio.create_task(self._detect_in_background())
            return {}
        answered_by, seconds = self._detection()
        await self._timeline.pass_time(seconds)
        self.record.answered_by = answered_by
        return {"AnsweredBy": answered_by}

    async def _detect_in_background(self) -> None:
        answered_by, seconds = self._detection()
        await asyncio.sleep(seconds / self._context.time_scale)
        self.record.answered_by = answered_by
        options = self.record.options
        if options.async_amd_status_callback is None:
            return
        params = {
            "CallSid": self.record.sid,
            "AccountSid": self.record.account_sid,
            "AnsweredBy": answered_by,
            "MachineDetectionDuration": str(round(seconds * 1000)),
        }
        await self._notify("amd-callback", options.async_amd_status_callback_method, options.async_amd_status_callback, params)

    # -- documents -----------------------------------------------------------------------

    async def _execute(self, source: Source) -> Source | None:
        try:
            document = await self._load(source)
            for warning in document.warnings:
                self._record_error(CallFailure(SCHEMA_WARNING, warning.message, source.url), fatal=False)
            return await self._perform(document, source.url)
        except CallFailure as failure:
            return await self._recover(failure, source)

    async def _load(self, source: Source) -> Document:
        if source.url is None:
            return parse(source.twiml or "")
        params = {**self._call_params(), **source.params}
        began = self._timeline.elapsed
        try:
            sent, document = await self._timeline.run_real(
                self._context.webhooks.fetch_twiml(source.method, source.url, params)
            )
        except CallFailure:
            self._log_request(source.purpose, source.method, source.url, params, None)
            raise
        self._log_sent(source.purpose, sent, params, self._timeline.elapsed - began)
        return document

    async def _recover(self, failure: CallFailure, source: Source) -> Source | None:
        self._record_error(failure)
        options = self.record.options
        if source.purpose != "fallback" and options.fallback_url:
            params = {"ErrorCode": str(failure.code), "ErrorUrl": failure.url or source.url or ""}
            return Source("fallback", options.fallback_url, options.fallback_method, params)
        await self._say(Say(APPLICATION_ERROR))
        raise _Ended("application-error")

    async def _perform(self, document: Document, document_url: str | None) -> Source | None:
        for verb in document.verbs:
            jump = await self._perform_verb(verb, document_url)
            if jump is not None:
                return jump
        return None

    async def _perform_verb(self, verb: Verb, document_url: str | None, *, listening: bool = False) -> Source | None:
        if isinstance(verb, Say):
            await self._say(verb)
        elif isinstance(verb, Play):
            await self._play(verb, document_url)
        elif isinstance(verb, Pause):
            spoken = None if listening else self._conversation.while_holding()
            if spoken is not None:  # nothing listens to a bare pause: these words are lost
                self._callee_says("speech", spoken.text, speech_seconds(spoken.text), listened=False)
            await self._timeline.pass_time(verb.length)
        elif isinstance(verb, Gather):
            return await self._gather(verb, document_url)
        elif isinstance(verb, Record):
            return await self._record(verb, document_url)
        elif isinstance(verb, Redirect):
            return Source("redirect", _resolve(verb.url, document_url), verb.method)
        elif isinstance(verb, Hangup):
            raise _Ended("hangup")
        elif isinstance(verb, ConversationRelay):
            return await self._relay(verb, document_url)
        return None

    # -- verbs ---------------------------------------------------------------------------

    async def _say(self, say: Say) -> None:
        for _ in range(say.loop or FOREVER_LOOPS):
            self._hear("say", say.text, say.voice, say.language)
            await self._timeline.pass_time(speech_seconds(say.text))

    async def _play(self, play: Play, document_url: str | None) -> None:
        seconds = 0.0
        url = _resolve(play.url, document_url) if play.url else None
        if url is not None:
            try:
                seconds = await self._fetch_audio(url)
            except CallFailure as failure:
                self._record_error(failure, fatal=False)
                return
        for _ in range(play.loop or FOREVER_LOOPS):
            if url is not None:
                self._hear("play", url)
                await self._timeline.pass_time(seconds)
            if play.digits:
                await self._play_digits(play.digits)

    async def _fetch_audio(self, url: str) -> float:
        params = self._call_params()
        began = self._timeline.elapsed
        try:
            sent, seconds = await self._timeline.run_real(self._context.webhooks.fetch_audio(url, params))
        except CallFailure:
            self._log_request("play", "GET", url, params, None)
            raise
        self._log_sent("play", sent, params, self._timeline.elapsed - began)
        return seconds

    async def _gather(self, gather: Gather, document_url: str | None) -> Source | None:
        if gather.prompts and all(isinstance(prompt, Pause) for prompt in gather.prompts):
            return await self._held(gather, document_url)
        for prompt in gather.prompts:
            await self._perform_verb(prompt, document_url, listening=True)
        heard = await self._listen(gather, await self._next_reply())
        return self._gathered(gather, heard, document_url)

    async def _held(self, gather: Gather, document_url: str | None) -> Source | None:
        """A Gather holding only pauses is a silence that listens: the callee says a line it
        has for such a moment (heard), or nothing — its answer to the last prompt stays owed."""
        spoken = self._conversation.while_holding()
        if spoken is None:
            for pause in gather.prompts:
                await self._perform_verb(pause, document_url, listening=True)
        return self._gathered(gather, await self._listen(gather, spoken or Silence()), document_url)

    def _gathered(self, gather: Gather, heard: dict[str, str] | None, document_url: str | None) -> Source | None:
        if heard is None and not gather.action_on_empty_result:
            return None
        action = _resolve(gather.action or document_url, document_url)
        return Source("action", action, gather.method, heard or {})

    async def _listen(self, gather: Gather, reply: Reply) -> dict[str, str] | None:
        if isinstance(reply, HangUp):
            raise _Ended("callee-hangup")
        if isinstance(reply, Speech) and "speech" in gather.input:
            speaking = REPLY_DELAY_SECONDS + speech_seconds(reply.text)
            self._callee_says("speech", reply.text, speaking)
            await self._timeline.pass_time(speaking)
            await self._timeline.pass_time(gather.silence_after_speech)
            return {"SpeechResult": reply.text, "Confidence": f"{reply.confidence:.8f}".rstrip("0").rstrip(".")}
        if isinstance(reply, Digits) and "dtmf" in gather.input:
            return await self._press(gather, reply.keys)
        if isinstance(reply, (Speech, Digits)):
            self._callee_says(*_unheard(reply), listened=False)
        await self._timeline.pass_time(gather.timeout)
        return None

    async def _press(self, gather: Gather, keys: str) -> dict[str, str] | None:
        self._callee_says("digits", keys)
        entered, finished_on = "", ""
        for key in keys:
            await self._timeline.pass_time(DIGIT_SECONDS)
            if key in gather.finish_on_key:
                finished_on = key
                break
            entered += key
            if gather.num_digits is not None and len(entered) >= gather.num_digits:
                break
        else:
            await self._timeline.pass_time(gather.timeout)
        if not entered:
            return None
        return {"Digits": entered, "FinishedOnKey": finished_on}

    async def _record(self, record: Record, document_url: str | None) -> Source | None:
        if record.play_beep:
            self._hear("beep", "beep")
        reply = await self._next_reply()
        if isinstance(reply, HangUp):
            raise _Ended("callee-hangup")
        if not isinstance(reply, Speech):
            if isinstance(reply, Digits):
                self._callee_says("digits", reply.keys)
            await self._timeline.pass_time(record.timeout)
            return None
        self._callee_says("speech", reply.text, speech_seconds(reply.text))
        seconds = min(speech_seconds(reply.text), record.max_length)
        await self._timeline.pass_time(seconds + record.timeout)
        action = _resolve(record.action or document_url, document_url)
        return Source("action", action, record.method, self._recording_params(seconds))

    async def _relay(self, verb: ConversationRelay, document_url: str | None) -> Source | None:
        """A ConversationRelay session (simulator/relay.py); at its end — at once, the call
        still in progress — the `<Connect action>` URL is asked for what the call does next,
        with Twilio's request parameters and SessionId, SessionStatus (`ended` after the
        application's `end`, `failed` for a socket refused or dropped), SessionDuration,
        HandoffData (when `end` gave one) and ErrorCode (a failed session's). A callee who hangs
        up ends the call; no action is asked then."""
        started = self._timeline.elapsed
        setup = {"type": "setup", "sessionId": new_sid("VX"), "accountSid": self.record.account_sid,
                 "callSid": self.record.sid, "from": self.record.from_, "to": self.record.to,
                 "direction": "outbound-api", "callStatus": "IN-PROGRESS", "customParameters": {}}
        webhooks = self._context.webhooks
        ended = await relay.converse(verb.url, webhooks.socket_destinations(verb.url), webhooks.sign(verb.url, {}),
                                     setup, _RelayLine(self), relay.Voices.of(verb))
        if ended.error is not None:
            self._record_error(CallFailure(0, f"ConversationRelay: {ended.error}", verb.url), fatal=False)
        if ended.status == "completed":
            raise _Ended("callee-hangup")
        if verb.action is None:
            return None
        params = {"SessionId": str(setup["sessionId"]), "SessionStatus": ended.status,
                  "SessionDuration": str(round(self._timeline.elapsed - started))}
        if ended.handoff_data is not None:
            params["HandoffData"] = ended.handoff_data
        if ended.error_code is not None:
            params["ErrorCode"] = str(ended.error_code)
        return Source("action", _resolve(verb.action, document_url), verb.method, params)

    def _recording_params(self, seconds: float) -> dict[str, str]:
        sid = new_sid("RE")
        url = f"{self.record.api_base_url}/{API_VERSION}/Accounts/{self.record.account_sid}/Recordings/{sid}"
        return {"RecordingUrl": url, "RecordingSid": sid, "RecordingDuration": str(max(round(seconds), 1))}

    async def _next_reply(self) -> Reply:
        heard = " ".join(self._unanswered)
        self._unanswered.clear()
        return await self._timeline.run_real(self._conversation.reply(heard))

    # -- what happened -------------------------------------------------------------------

    def _hear(self, kind: str, text: str, voice: str | None = None, language: str | None = None) -> None:
        utterance = Utterance(self._timeline.now(), kind, text, voice=voice, language=language)
        self.record.heard.append(utterance)
        if kind == "say":
            self._unanswered.append(text)
        if self._after_beep():
            self.record.voicemail.append(utterance)

    def _after_beep(self) -> bool:
        if self._callee.answer != "machine" or self._answered_at is None:
            return False
        return self._timeline.elapsed >= self._answered_at + self._callee.greeting_seconds

    def _callee_says(self, kind: str, text: str, seconds: float | None = None, *, listened: bool = True) -> None:
        now = self._timeline.now()
        ends = None if seconds is None else now + timedelta(seconds=seconds)
        self.record.said.append(Utterance(now, kind, text, ends, listened))

    def _record_error(self, failure: CallFailure, *, fatal: bool = True) -> None:
        self.record.errors.append(CallError(failure.code, failure.message, failure.url, self._timeline.now(), fatal))

    def _set_status(self, status: str) -> None:
        self.record.status = status
        self.record.statuses.append(status)
        self.record.date_updated = self._timeline.now()

    def _finish(self, status: str, reason: str) -> None:
        if self.record.is_over:
            return
        record = self.record
        record.end_reason = reason
        if self._answered_at is not None:
            record.duration = round(self._timeline.elapsed - self._answered_at)
            record.end_time = self._timeline.now()
        self._set_status(status)
        self._callbacks.emit("completed", self._final_params())

    # -- requests ------------------------------------------------------------------------

    def _call_params(self, status: str | None = None) -> dict[str, str]:
        record = self.record
        return {
            "CallSid": record.sid,
            "AccountSid": record.account_sid,
            "From": record.from_,
            "To": record.to,
            "CallStatus": status or record.status,
            "ApiVersion": API_VERSION,
            "Direction": "outbound-api",
            "Caller": record.from_,
            "Called": record.to,
        }

    def _progress_params(self, status: str) -> dict[str, str]:
        params = {**self._call_params(status), "Timestamp": rfc2822(self._timeline.now())}
        if self.record.answered_by is not None:
            params["AnsweredBy"] = self.record.answered_by
        return params

    def _final_params(self) -> dict[str, str]:
        status = self.record.status
        params = self._progress_params(status)
        params["SipResponseCode"] = SIP_RESPONSE[status]
        params["CallDuration"] = str(self.record.duration or 0)
        params["Duration"] = str(math.ceil((self.record.duration or 0) / 60))
        return params

    async def _deliver_callback(self, method: str, url: str, params: dict[str, str]) -> None:
        await self._notify("status-callback", method, url, params)

    async def _notify(self, purpose: str, method: str, url: str, params: dict[str, str]) -> None:
        """A request whose answer Twilio ignores; failures are only logged (15003)."""
        try:
            sent = await self._context.webhooks.send(method, url, params)
        except CallFailure as failure:
            self._log_request(purpose, method, url, params, None)
            self._record_error(CallFailure(CALLBACK_WARNING, failure.message, url), fatal=False)
            return
        self._log_sent(purpose, sent, params)
        if not 200 <= sent.response.status_code < 300:
            message = f"{purpose} answered {sent.response.status_code}"
            self._record_error(CallFailure(CALLBACK_WARNING, message, url), fatal=False)

    def _log_sent(self, purpose: str, sent: Sent, params: dict[str, str], seconds: float = 0.0) -> None:
        self._log_request(purpose, sent.method, sent.url, params, sent.response.status_code, seconds)

    def _log_request(self, purpose: str, method: str, url: str, params: dict[str, str], status: int | None,
                     seconds: float = 0.0) -> None:
        request = WebhookRequest(purpose, method.upper(), url, dict(params), status, seconds)
        self.record.requests.append(request)
        self._context.observe(self.record, request)


class _RelayLine:
    """The engine as a relay session sees it: what the callee hears and says, in call time."""

    def __init__(self, engine: CallEngine) -> None:
        self._engine = engine

    def hear(self, kind: str, text: str, voice: str | None = None, language: str | None = None) -> None:
        self._engine._hear(kind, text, voice, language)
        self._engine._unanswered.clear()  # a relay turn is answered by `reply`, with what was said

    def callee_says(self, kind: str, text: str, seconds: float | None) -> None:
        self._engine._callee_says(kind, text, seconds)

    async def reply(self, heard: str) -> Reply:
        return await self._engine._timeline.run_real(self._engine._conversation.reply(heard))

    async def pass_time(self, seconds: float) -> None:
        await self._engine._timeline.pass_time(seconds)

    async def wait_for(self, work: Awaitable[T]) -> T:
        return await self._engine._timeline.run_real(work)

    def opened(self, local_url: str) -> None:
        """The socket's handshake, logged as the request it is (purpose `relay`, status 101)."""
        self._engine._log_request("relay", "GET", local_url, {}, 101)


def _resolve(url: str | None, document_url: str | None) -> str:
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    if url is None or document_url is None:
        raise CallFailure(INVALID_URL_FORMAT, f"Invalid URL format: {url!r} needs an absolute URL", url)
    return urljoin(document_url, url)


def _unheard(reply: Speech | Digits) -> tuple[str, str]:
    return ("speech", reply.text) if isinstance(reply, Speech) else ("digits", reply.keys)
