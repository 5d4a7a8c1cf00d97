"""The ConversationRelay translations: the call's `<Connect><ConversationRelay>` TwiML, the
port's commands as the WebSocket messages Twilio documents (`text`, `play`, `sendDigits`,
`end`), and Twilio's messages (`setup`, `prompt`, `dtmf`, `interrupt`, `error`) as events.

A rendered command is a *plan* (JSON): the messages to send and what comes next — the line is
free again (`ready`: the socket feeds `Ready(resume)` back itself), the callee is listened to
(`listen`: their next final prompt is `Heard(turn)`), or the call ends (`end`). The plan is
what the core stores with the answer, so a replay sends the very same messages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twilio.twiml.voice_response import Connect, VoiceResponse

from twilio_caller.transport.port import (
    Ask, CallLine, Command, Digits, EndCall, Event, Heard, Hold, Interrupted, Line, Reconnect, Renderer, Say,
    SendDigits, SessionCommand, Speech, Spoken,
)

SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
ELEVENLABS = "ElevenLabs"
TTS_PROVIDERS = {"Polly": "Amazon", "Google": "Google", ELEVENLABS: ELEVENLABS}
HANDOFF_APOLOGY = "Sorry, I have a technical problem and have to end this call. Goodbye."
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
UNABLE_TO_CONNECT = "64102"  # the <Connect action>'s ErrorCode when Twilio could not open the socket


# -- the TwiML that hands the call to the socket -------------------------------------------


def connect(speech: Speech, socket_url: str, action_url: str, greeting: str | None = None) -> str:
    """`<Connect action><ConversationRelay url …/></Connect>`: the call's audio goes to the
    socket; when the session ends (our `end`, or a dropped socket) Twilio asks `action_url`.
    A `greeting` (welcomeGreeting) is spoken by Twilio as the session connects.
    The voice's language and recognition's default to the call's (`language`); `<Language>`
    elements name the voice and recognition for each language a line may switch to."""
    response = VoiceResponse()
    block = Connect(action=action_url)
    options = speech.relay
    provider, voice = tts_voice(speech.voice)
    hints = speech.hints if options.hints is None else options.hints
    relay = block.conversation_relay(
        url=socket_url, language=speech.recognition_language, tts_language=options.tts_language,
        transcription_language=options.transcription_language, tts_provider=provider, voice=voice,
        transcription_provider=options.transcription_provider, speech_model=options.speech_model,
        hints=",".join(hints) or None, interruptible="speech", dtmf_detection=True,
        elevenlabs_text_normalization=options.elevenlabs_text_normalization,
        welcome_greeting=greeting, welcome_greeting_interruptible="speech" if greeting else None,
    )
    for language in options.languages:
        language_provider, language_voice = tts_voice(language.voice or "")
        relay.language(code=language.code, tts_provider=language_provider, voice=language_voice,
                       transcription_provider=language.transcription_provider,
                       speech_model=language.speech_model)
    response.append(block)
    return str(response)


def tts_voice(voice: str) -> tuple[str | None, str | None]:
    """A project voice (`Polly.Joanna`, `Google.en-US-Neural2-F`, `ElevenLabs.<id>-<model>-…`)
    as ConversationRelay's ttsProvider and voice; Twilio's own names (alice, man, woman) leave
    both to its default."""
    prefix, _, name = voice.partition(".")
    provider = TTS_PROVIDERS.get(prefix)
    if provider is None or not name:
        return None, None
    return provider, name


def handoff_key(session_id: str | None) -> str:
    """The answer key of the `<Connect action>` request that ended relay session `session_id`
    (Twilio's SessionId): one answer per session, so a call may go through several."""
    return f"handoff:{session_id}" if session_id and SESSION_ID.fullmatch(session_id) else "handoff"


# -- commands out -------------------------------------------------------------------------------


class EngineRenderer:
    """The core's renderer for both engines: a relay call's commands as plans, any other
    call's — and a reconnect, the TwiML that opens a new session — through the Gather
    transport (TwiML)."""

    def __init__(self, gather: Renderer) -> None:
        self._gather = gather

    def render(self, line: CallLine, command: Command) -> str:
        if line.engine == "relay" and not isinstance(command, Reconnect):
            return render(command)
        return self._gather.render(line, command)


def render(command: SessionCommand) -> str:
    """A neutral command as a plan (see the module docstring)."""
    match command:
        case Say(lines=lines, resume=resume):
            return _plan(_spoken(lines), {"ready": resume})
        case Ask(lines=lines, turn=turn):
            return _plan(_spoken(lines), {"listen": turn})
        case Hold(resume=resume):
            return _plan([], {"ready": resume})
        case SendDigits(digits=digits, resume=resume):
            return _plan([{"type": "sendDigits", "digits": digits}], {"ready": resume})
        case EndCall(lines=lines):
            end = {"type": "end", "handoffData": json.dumps({"reason": "hangup"})}
            return _plan([*_spoken(lines), end], {"end": True})


@dataclass(frozen=True)
class Plan:
    messages: tuple[Mapping[str, Any], ...]
    ready: int | None = None
    listen: int | None = None
    end: bool = False


def read_plan(document: str) -> Plan:
    """A stored plan back; anything else (TwiML kept before the call changed engines) ends it."""
    try:
        value = json.loads(document)
        then = value["then"]
        return Plan(tuple(value["messages"]), then.get("ready"), then.get("listen"), bool(then.get("end")))
    except (ValueError, KeyError, TypeError, AttributeError):
        return Plan((), end=True)


def _plan(messages: list[dict[str, Any]], then: dict[str, Any]) -> str:
    return json.dumps({"messages": messages, "then": then}, ensure_ascii=False)


def _spoken(lines: Sequence[Spoken]) -> list[dict[str, Any]]:
    """Lines as `play` (pre-generated audio) or `text` tokens, one per sentence, `last` on the
    final text token of the turn; a line in another language than the call's carries it
    (`lang`) on each of its tokens."""
    messages: list[dict[str, Any]] = []
    for line in lines:
        if isinstance(line, Line) and line.audio_url:
            messages.append({"type": "play", "source": line.audio_url})
            continue
        text, lang = (line.text, line.language) if isinstance(line, Line) else (line, None)
        tag = {"lang": lang} if lang else {}
        messages.extend({"type": "text", "token": piece + " ", "last": False, **tag} for piece in sentences(text))
    texts = [message for message in messages if message["type"] == "text"]
    if texts:
        texts[-1]["token"] = texts[-1]["token"].rstrip()
        texts[-1]["last"] = True
    return messages


def language_switch(messages: Sequence[Mapping[str, Any]], current: str | None,
                    speech: Speech) -> tuple[dict[str, str] | None, str | None]:
    """The `language` message to send before `messages` so the voice speaks their text and the
    answer is recognised in their language (`lang` of the last text token; none: the call's),
    when the session is not in it already (`current`, None: the call's); and the language
    the session is in after them."""
    texts = [message for message in messages if message.get("type") == "text"]
    if not texts:
        return None, current
    wanted = texts[-1].get("lang")
    if wanted == current:
        return None, current
    tts = wanted or speech.relay.tts_language or speech.recognition_language
    heard = wanted or speech.relay.transcription_language or speech.recognition_language
    return {"type": "language", "ttsLanguage": tts, "transcriptionLanguage": heard}, wanted


def without_greeting(messages: Sequence[Mapping[str, Any]], greeting: str) -> tuple[Mapping[str, Any], ...]:
    """The first answer's messages less the tokens of the welcomeGreeting Twilio has spoken
    already (its sentences, when the plan starts with them and text follows)."""
    count = len(sentences(greeting))
    leading = list(messages[:count])
    spoken = [str(message.get("token", "")).strip() for message in leading if message.get("type") == "text"]
    rest = tuple(messages[count:])
    if spoken != sentences(greeting) or not any(message.get("type") == "text" for message in rest):
        return tuple(messages)
    return rest


def sentences(text: str) -> list[str]:
    return [piece for piece in SENTENCE_END.split(" ".join(text.split())) if piece]


# -- messages in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    call_sid: str


@dataclass(frozen=True)
class Prompt:
    text: str
    last: bool


@dataclass(frozen=True)
class Dtmf:
    digits: str  # Twilio sends one key a message; the socket joins a turn's keys


@dataclass(frozen=True)
class Failure:
    description: str


Message = Setup | Prompt | Dtmf | Interrupted | Failure
DTMF_KEYS = frozenset("0123456789*#ABCD")
MAX_FIELD = 4096


def parse(raw: str) -> Message | None:
    """One message from Twilio, or None for anything malformed or unknown (then ignored)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind == "setup":
        return _text(value, "callSid", lambda sid: Setup(sid) if sid else None)
    if kind == "prompt":
        last = value.get("last", True)
        return _text(value, "voicePrompt", lambda text: Prompt(text, last is not False))
    if kind == "dtmf":
        return _text(value, "digit", lambda key: Dtmf(key) if key in DTMF_KEYS else None)
    if kind == "interrupt":
        return _text(value, "utteranceUntilInterrupt", lambda heard: Interrupted(heard))
    if kind == "error":
        return _text(value, "description", lambda text: Failure(text))
    return None


def _text(value: Mapping[str, Any], key: str, build: Callable[[str], Message | None]) -> Message | None:
    field = value.get(key, "")
    if not isinstance(field, str) or len(field) > MAX_FIELD:
        return None
    return build(field)


def heard(turn: int, message: Prompt | Dtmf, call_id: str) -> Event:
    """The callee's final prompt or key in listening turn `turn` (one per turn) as the core's
    event; the dedupe key names the turn as Gather's does, so a turn is recorded once whatever
    the socket or engine, and a restart knows the turn was answered."""
    key = f"{call_id}:gather:{turn}"
    if isinstance(message, Dtmf):
        return Digits(turn, message.digits, key)
    return Heard(turn, message.text, None, key)
