"""ConversationRelay as Twilio runs it (issue 17), for the simulator: on `<Connect>
<ConversationRelay url>` the call's audio goes to the application's WebSocket. The simulator
opens it with a signed handshake (X-Twilio-Signature over the url, no parameters), sends
`setup`, hears the application's `text` tokens (a turn ends at `last`), `play` and
`sendDigits`, and speaks the callee's script as `prompt` messages (a partial, then the final
one) or `dtmf` keys; a reply with `interrupt_after: N` cuts the assistant's turn after N words
(`interrupt` with what was heard). `end` closes the session with its handoffData; the engine
then asks the `<Connect action>` URL at once. A refused socket (error 64102, "Unable to connect
to WebSocket URL") or a dropped one (64105, "WebSocket ended") ends the session as failed, with
that ErrorCode on the action request; the call itself stays in progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from twilio_caller.simulator.callee import Digits, HangUp, Reply, Speech
from twilio_caller.simulator.timeline import speech_seconds
from twilio_caller.simulator.twiml import ConversationRelay as ConversationRelayVerb

UNABLE_TO_CONNECT = 64102
WEBSOCKET_ENDED = 64105
OPEN_SECONDS = 5.0
MAX_MESSAGE_BYTES = 64 * 1024
REPLY_DELAY_SECONDS = 0.5
DIGIT_SECONDS = 0.3
T = TypeVar("T")


class RelayLine(Protocol):
    """The engine's side of the call, as the relay session uses it."""

    def hear(self, kind: str, text: str, voice: str | None = None, language: str | None = None) -> None: ...
    def callee_says(self, kind: str, text: str, seconds: float | None) -> None: ...
    async def reply(self, heard: str) -> Reply: ...
    async def pass_time(self, seconds: float) -> None: ...
    async def wait_for(self, work: Awaitable[T]) -> T: ...
    def opened(self, local_url: str) -> None: ...  # the socket is open (there, for a balanced URL)


@dataclass(frozen=True)
class SessionEnd:
    """How the session ended: `ended` (the application's `end`), `completed` (the callee hung
    up) or `failed` (refused or dropped socket); with the handoffData and any error."""

    status: str
    handoff_data: str | None = None
    error: str | None = None
    turns: int = 0
    error_code: int | None = None  # Twilio's, on a failed session
    refused: int | None = None  # the HTTP status of a handshake the application refused


@dataclass
class Voices:
    """Which voice speaks a line: the noun's `ttsProvider`/`voice`, or those of the `<Language>`
    element of the line's language; the session's language is the noun's (`ttsLanguage`, else
    `language`) until a `language` message changes it, and a text token's `lang` names its own."""

    default: tuple[str | None, str | None]
    by_language: dict[str, tuple[str | None, str | None]]
    language: str | None
    greeting: str | None = None  # welcomeGreeting: spoken as the session connects
    heard_in: str = "en-US"  # the recognition language prompts report (`lang`)

    @classmethod
    def of(cls, verb: ConversationRelayVerb) -> Voices:
        attributes = dict(verb.attributes)
        by_language = {}
        for element in map(dict, verb.languages):
            by_language[element["code"]] = (element.get("ttsProvider"), element.get("voice"))
        return cls((attributes.get("ttsProvider"), attributes.get("voice")), by_language,
                   attributes.get("ttsLanguage") or attributes.get("language"), attributes.get("welcomeGreeting"),
                   attributes.get("transcriptionLanguage") or attributes.get("language") or "en-US")

    def speaking(self, lang: str | None) -> tuple[str | None, str | None]:
        """(voice as `provider.voice`, language) of a line whose tokens carry `lang`."""
        language = lang or self.language
        provider, voice = self.by_language.get(language or "", self.default)
        if voice is None:
            return provider, language
        return (f"{provider}.{voice}" if provider else voice), language


async def converse(url: str, local_urls: Sequence[str], signature: str, setup: Mapping[str, Any],
                   line: RelayLine, voices: Voices | None = None) -> SessionEnd:
    """One session on the first of `local_urls` (where `url` leads: balanced instances in
    turn) that takes the connection; one that refuses it is passed over, as for requests."""
    ended = SessionEnd("failed", error="no WebSocket URL", error_code=UNABLE_TO_CONNECT)
    for local_url in local_urls:
        ended = await _converse(local_url, signature, setup, line, voices)
        if ended.error_code != UNABLE_TO_CONNECT or isinstance(ended.refused, int):
            return ended
    return ended


async def _converse(local_url: str, signature: str, setup: Mapping[str, Any], line: RelayLine,
                    voices: Voices | None) -> SessionEnd:
    try:
        async with connect(local_url, additional_headers={"X-Twilio-Signature": signature},
                           open_timeout=OPEN_SECONDS, proxy=None, compression=None, ping_interval=None,
                           max_size=MAX_MESSAGE_BYTES) as socket:
            line.opened(local_url)
            await socket.send(json.dumps(dict(setup)))
            return await _Session(socket, line, voices or Voices((None, None), {}, None)).run()
    except InvalidStatus as refused:
        status = refused.response.status_code
        return SessionEnd("failed", error=f"WebSocket handshake refused: HTTP {status}",
                          error_code=UNABLE_TO_CONNECT, refused=status)
    except (InvalidHandshake, OSError, TimeoutError) as error:
        return SessionEnd("failed", error=f"WebSocket connection failed: {error!r}", error_code=UNABLE_TO_CONNECT)


@dataclass
class _Session:
    socket: ClientConnection
    line: RelayLine
    voices: Voices
    turns: int = 0
    lang: str | None = None  # of the turn's text tokens

    async def run(self) -> SessionEnd:
        tokens: list[str] = []
        if self.voices.greeting:
            self.line.hear("say", self.voices.greeting, *self.voices.speaking(None))
            await self.line.pass_time(speech_seconds(self.voices.greeting))
        try:
            while True:  # each wait in call time: the call's TimeLimit cuts a held line too
                message = _message(await self.line.wait_for(self.socket.recv()))
                kind = message.get("type") if message is not None else None
                if message is None or kind not in KNOWN:
                    await self.socket.send(json.dumps({"type": "error", "description": "Invalid message"}))
                elif kind == "text":
                    tokens.append(str(message.get("token", "")))
                    self.lang = message.get("lang") if isinstance(message.get("lang"), str) else None
                    if message.get("last") is True:
                        said, tokens = "".join(tokens).strip(), []
                        if await self._turn(said):
                            return SessionEnd("completed", turns=self.turns)
                elif kind == "end":
                    return SessionEnd("ended", _handoff(message), turns=self.turns)
                elif kind == "language":
                    self.voices.language = str(message.get("ttsLanguage") or self.voices.language)
                    self.voices.heard_in = str(message.get("transcriptionLanguage") or self.voices.heard_in)
                else:
                    HANDLERS[str(kind)](self.line, message)
        except ConnectionClosed as closed:
            return SessionEnd("failed", error=f"WebSocket closed: {closed.rcvd.code if closed.rcvd else 1006}",
                              turns=self.turns, error_code=WEBSOCKET_ENDED)
        except _Dropped:
            return SessionEnd("failed", error="WebSocket closed while the callee spoke", turns=self.turns,
                              error_code=WEBSOCKET_ENDED)

    async def _unless_dropped(self, work: Awaitable[T]) -> T:
        """`work` (the callee thinking of a reply), unless the socket closes first: Twilio sees
        a drop at once, whatever the callee is doing (the reply is then lost with the session)."""
        doing = asyncio.ensure_future(work)
        closing = asyncio.ensure_future(self.socket.wait_closed())
        try:
            await asyncio.wait({doing, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (doing, closing):
                waiting.cancel()
        if doing.done() and not doing.cancelled():
            return doing.result()
        raise _Dropped()

    async def _turn(self, said: str) -> bool:
        """The assistant finished a turn: the callee hears it (or cuts it) and replies. True
        when the callee hung up."""
        self.turns += 1
        reply = await self._unless_dropped(self.line.reply(said))
        words = said.split()
        cut = reply.interrupt_after if isinstance(reply, Speech) else None
        voice, language = self.voices.speaking(self.lang)
        if cut is not None and cut < len(words):
            heard = " ".join(words[:cut])
            self.line.hear("say", heard, voice, language)
            await self.line.pass_time(speech_seconds(heard))
            await self._send({"type": "interrupt", "utteranceUntilInterrupt": heard,
                              "durationUntilInterruptMs": round(speech_seconds(heard) * 1000)})
        elif said:
            self.line.hear("say", said, voice, language)
            await self.line.pass_time(speech_seconds(said))
        return await self._answer(reply)

    async def _answer(self, reply: Reply) -> bool:
        if isinstance(reply, HangUp):
            return True
        if isinstance(reply, Speech):
            seconds = REPLY_DELAY_SECONDS + speech_seconds(reply.text)
            self.line.callee_says("speech", reply.text, seconds)
            await self.line.pass_time(seconds)
            first = reply.text.split()[0]
            if first != reply.text:
                await self._send({"type": "prompt", "voicePrompt": first, "lang": self.voices.heard_in,
                                  "last": False})
            await self._send({"type": "prompt", "voicePrompt": reply.text, "lang": self.voices.heard_in,
                              "last": True})
        elif isinstance(reply, Digits):
            self.line.callee_says("digits", reply.keys, None)
            for key in reply.keys.replace("w", ""):
                await self.line.pass_time(DIGIT_SECONDS)
                await self._send({"type": "dtmf", "digit": key})
        return False

    async def _send(self, message: Mapping[str, Any]) -> None:
        await self.socket.send(json.dumps(dict(message)))


class _Dropped(Exception):
    """The application's end of the socket closed while the callee was busy."""


def _message(raw: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _handoff(message: Mapping[str, Any]) -> str | None:
    data = message.get("handoffData")
    return data if isinstance(data, str) else None


def _play(line: RelayLine, message: Mapping[str, Any]) -> None:
    line.hear("play", str(message.get("source", "")))


def _digits(line: RelayLine, message: Mapping[str, Any]) -> None:
    line.hear("digits", str(message.get("digits", "")))


HANDLERS: dict[str, Callable[[RelayLine, Mapping[str, Any]], None]] = {
    "play": _play, "sendDigits": _digits,
}
KNOWN = frozenset({"text", "end", "language", *HANDLERS})
