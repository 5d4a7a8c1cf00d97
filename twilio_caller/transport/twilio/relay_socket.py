"""The ConversationRelay WebSocket of one call (/relay/{call_id}/{token}): the handshake is
checked like a webhook request (known call, its token, a valid X-Twilio-Signature over the
public wss URL, one socket per call), then `setup` must come within a few seconds; messages
are bounded in size and rate. The socket then drives the conversation core: each answer's plan
(relay.py) is sent, and what follows — the line free again, a listening turn, the end — is fed
back as the next event. An `interrupt` is recorded as it arrives."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from twilio_caller.sessions import CallSession
from twilio_caller.transport.port import Answered, CallLine, Event, Interrupted, Ready, Silence
from twilio_caller.transport.twilio import relay
from twilio_caller.transport.twilio.routes import WebhookUrls, socket_base

log = logging.getLogger("twilio_caller.relay")
NORMAL_CLOSURE = 1000
POLICY_VIOLATION = 1008
RESUME, REASK = "resume", "reask"  # a take-back's socket URL: where the call goes on
ANSWERED_BY, GREETED = "answeredBy", "greeted"  # a new call's: who answered, the welcomeGreeting given
WHO = frozenset({"human", "machine", "fax", "unknown"})
TOO_BIG = 1009
Sessions = Callable[[str, bytes], Awaitable[CallSession | None]]  # (call_id, token) → the live call's session


class Core(Protocol):
    """The conversation core, as the socket uses it (conversation.Conversation)."""

    async def handle(self, session: CallSession, event: Event) -> str | None: ...


class Conversing(Core, Protocol):
    """The core with its opening line (the welcomeGreeting, when configured)."""

    @property
    def opening(self) -> str: ...


@dataclass(frozen=True)
class Limits:
    setup_seconds: float = 5.0  # a socket that does not say `setup` by then is closed
    max_message_bytes: int = 16_384
    messages_per_second: float = 20.0
    burst: int = 40
    silence_seconds: float = 15.0  # a listening turn with no prompt by then is a silence
    digit_gap_seconds: float = 2.0  # keys of one answer: each within this of the one before, or up to #
    end_seconds: float = 5.0  # after our `end`, Twilio closes the socket; by then we do


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class _Bucket:
    """At most `rate` messages a second after a burst of `burst` (a token bucket)."""

    def __init__(self, rate: float, burst: int, monotonic: Callable[[], float]) -> None:
        self._rate, self._burst, self._now = rate, float(burst), monotonic
        self._tokens, self._at = float(burst), monotonic()

    def take(self) -> bool:
        now = self._now()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class RelaySockets:
    """The endpoint of every call's relay socket. What the socket starts with travels in its
    signed URL (who answered, the welcomeGreeting given, where a taken-back call goes on), so
    any server that can find the call's session (`sessions`: several instances on one store
    adopt it from there) can hold its socket."""

    def __init__(self, sessions: Sessions, conversation: Callable[[], Conversing],
                 verify: Callable[[str, Mapping[str, str], str], bool], public_base_url: str,
                 limits: Limits = Limits(), monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._conversation = conversation
        self._verify = verify
        self._base = socket_base(public_base_url)
        self._limits = limits
        self._monotonic = monotonic
        self._open: set[str] = set()

    def greeting(self, session: CallSession) -> str | None:
        """The opening as welcomeGreeting, when configured."""
        return self._conversation().opening if session.speech.relay.welcome_greeting else None

    async def serve(self, websocket: WebSocket) -> None:
        session = await self._admitted(websocket)
        if session is None:
            await websocket.close(code=POLICY_VIOLATION)
            return
        self._open.add(session.call_id)
        try:
            await websocket.accept()
            await self._run(websocket, session)
            await _close(websocket, NORMAL_CLOSURE)  # Twilio did not close after `end`: we do
        except _Refused as refused:
            log.warning("call %s: relay socket closed: %s", session.call_id, refused.reason)
            await _close(websocket, refused.code)
        except WebSocketDisconnect:
            log.info("call %s: relay socket closed by Twilio", session.call_id)
        except (RuntimeError, OSError) as exc:  # a send on a socket the other side closed meanwhile
            log.info("call %s: relay socket lost: %s", session.call_id, exc)
        finally:
            self._open.discard(session.call_id)
            if not (session.hung_up_by_us or session.ended):
                session.detour()  # dropped: an answer held for the agent lets go, taking nothing

    async def _admitted(self, websocket: WebSocket) -> CallSession | None:
        given = websocket.path_params["token"].encode("utf-8", "surrogateescape")
        session = await self._sessions(websocket.path_params["call_id"], given)
        if session is None:
            return None
        if session.ended or session.call_id in self._open:
            return None
        url = self._base + websocket.url.path + (f"?{websocket.url.query}" if websocket.url.query else "")
        if not self._verify(url, {}, websocket.headers.get("X-Twilio-Signature", "")):
            log.warning("rejected a relay socket with a bad signature for call %s", session.call_id)
            return None
        return session

    async def _run(self, websocket: WebSocket, session: CallSession) -> None:
        bucket = _Bucket(self._limits.messages_per_second, self._limits.burst, self._monotonic)
        try:
            first = await asyncio.wait_for(self._receive(websocket, bucket), self._limits.setup_seconds)
        except TimeoutError:
            raise _Refused(POLICY_VIOLATION, "no setup message in time") from None
        if not isinstance(first, relay.Setup):
            raise _Refused(POLICY_VIOLATION, "the first message was not setup")
        if session.twilio_sid and first.call_sid != session.twilio_sid:
            raise _Refused(POLICY_VIOLATION, "setup names another call")
        inbox: asyncio.Queue[relay.Prompt | relay.Dtmf | None] = asyncio.Queue()
        turn = _Turn()
        driver = asyncio.ensure_future(self._drive(websocket, session, inbox, turn))
        try:
            await self._read(websocket, session, bucket, inbox, turn, driver)
        finally:
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
        await self._closed_by_twilio(websocket, bucket)

    async def _closed_by_twilio(self, websocket: WebSocket, bucket: _Bucket) -> None:
        """After `end` Twilio closes the socket (the messages before it are all spoken): wait
        for that, reading and ignoring what comes meanwhile, no longer than `end_seconds`."""
        async def drain() -> None:
            while True:
                await self._receive(websocket, bucket)
        try:
            await asyncio.wait_for(drain(), self._limits.end_seconds)
        except TimeoutError:
            return

    async def _read(self, websocket: WebSocket, session: CallSession, bucket: _Bucket,
                    inbox: asyncio.Queue[relay.Prompt | relay.Dtmf | None], turn: _Turn,
                    driver: asyncio.Future[None]) -> None:
        receiving = asyncio.ensure_future(self._receive(websocket, bucket))
        while True:
            pending: set[asyncio.Future[Any]] = {receiving, driver}
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if driver in done:
                receiving.cancel()
                await asyncio.gather(receiving, return_exceptions=True)
                driver.result()  # a failure of the driver surfaces here
                return
            message = receiving.result()
            receiving = asyncio.ensure_future(self._receive(websocket, bucket))
            if isinstance(message, Interrupted):
                await self._conversation().handle(session, message)
            elif isinstance(message, relay.Prompt | relay.Dtmf) and turn.listening:
                if isinstance(message, relay.Dtmf) or message.last:
                    inbox.put_nowait(message)
            elif isinstance(message, relay.Failure):
                log.warning("call %s: ConversationRelay reports: %s", session.call_id, message.description)

    async def _receive(self, websocket: WebSocket, bucket: _Bucket) -> relay.Message | None:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(received.get("code", 1000))
        raw = received.get("text") or received.get("bytes") or ""
        if len(raw) > self._limits.max_message_bytes:
            raise _Refused(TOO_BIG, "message too big")
        if not bucket.take():
            raise _Refused(POLICY_VIOLATION, "too many messages")
        return relay.parse(raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))

    async def _drive(self, websocket: WebSocket, session: CallSession,
                     inbox: asyncio.Queue[relay.Prompt | relay.Dtmf | None], turn: _Turn) -> None:
        """Answer each event with the core, send the plan, and make the next event of it."""
        event = self._first_event(websocket)
        language: str | None = None  # the session speaks and listens in the call's language
        greeted = self._conversation().opening if websocket.query_params.get(GREETED) == "1" else None
        while True:
            # a failed write is answered by the core itself: a goodbye plan that ends the call
            plan = relay.read_plan(await self._conversation().handle(session, event) or "")
            if plan.listen is not None:
                turn.listening = True  # before the question goes out: a quick answer is kept
            messages = relay.without_greeting(plan.messages, greeted) if greeted else plan.messages
            greeted = None
            switch, language = relay.language_switch(messages, language, session.speech)
            for message in (switch, *messages) if switch else messages:
                await websocket.send_text(json.dumps(message, ensure_ascii=False))
            if plan.end:
                return
            if plan.ready is not None:
                event = Ready(plan.ready)
                continue
            if plan.listen is None:
                return
            try:
                said = await asyncio.wait_for(inbox.get(), self._limits.silence_seconds)
            except TimeoutError:
                said = None
            if isinstance(said, relay.Dtmf):
                said = await self._keys(said, inbox)
            turn.listening = False
            event = Silence(plan.listen) if said is None else relay.heard(plan.listen, said, session.call_id)


    @staticmethod
    def _first_event(websocket: WebSocket) -> Event:
        """A new call's first event is its answer (by whom, as the voice request said); a call
        taken back (its signed socket URL says where it was) comes back as Ready(resume) or, a
        listening turn cut by the restart or the drop, as that turn with nothing heard (the
        question is asked again)."""
        query = websocket.query_params
        resume, reask, who = query.get(RESUME, ""), query.get(REASK, ""), query.get(ANSWERED_BY)
        if resume.isdigit():
            return Ready(int(resume))
        if reask.isdigit():
            return Silence(int(reask))
        return Answered(who if who in WHO else None)

    async def _keys(self, first: relay.Dtmf, inbox: asyncio.Queue[relay.Prompt | relay.Dtmf | None]) -> relay.Dtmf:
        """The keys of one answer: until `#`, a pause, or speech (the speech is not kept)."""
        keys = first.digits
        while not keys.endswith("#"):
            try:
                more = await asyncio.wait_for(inbox.get(), self._limits.digit_gap_seconds)
            except TimeoutError:
                break
            if not isinstance(more, relay.Dtmf):
                break
            keys += more.digits
        return relay.Dtmf(keys.removesuffix("#") or keys)


def connect_twiml(urls: WebhookUrls, line: CallLine, *, resume: int | None = None,
                  reask: int | None = None, greeting: str | None = None, answered_by: str | None = None) -> str:
    """The call's `<Connect><ConversationRelay>` to the socket, with the handoff as its action;
    the socket URL says where the session starts: a take-back's resume number or cut listening
    turn, else the call's answer (who answered, and whether a welcomeGreeting was spoken)."""
    query: dict[str, str] = {}
    if resume is not None:
        query[RESUME] = str(resume)
    elif reask is not None:
        query[REASK] = str(reask)
    else:
        query.update({ANSWERED_BY: answered_by} if answered_by else {})
        query.update({GREETED: "1"} if greeting else {})
    return relay.connect(line.speech, urls.socket_url(line, query or None), urls.url(line, "handoff"), greeting)


@dataclass
class _Turn:
    listening: bool = False


async def _close(websocket: WebSocket, code: int) -> None:
    try:
        await websocket.close(code=code)
    except (RuntimeError, WebSocketDisconnect):  # already closed by the other side
        return
