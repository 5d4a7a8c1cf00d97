"""Who picks up: scripted callees (a dict or YAML), the friendly default, and an interactive
callee whose replies come from a callable (a person typing, in the demo).

A scripted callee may also speak while it is held (`speak_while_holding`): one line at each
silence the assistant leaves — a `<Pause>`, or a `<Gather>` holding only pauses — in order.
A Gather hears it; a bare Pause does not (the words are lost, as on Twilio)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Union, cast, get_args

import yaml

from twilio_caller.simulator.errors import CalleeScriptError

Answer = Literal["human", "machine", "busy", "no-answer", "failed"]
ANSWERS: tuple[str, ...] = get_args(Answer)
DEFAULT_RING_SECONDS = 3.0
DEFAULT_GREETING_SECONDS = 8.0
DEFAULT_CONFIDENCE = 0.9
DTMF_KEYS = frozenset("0123456789*#ABCDw")


@dataclass(frozen=True)
class Speech:
    text: str
    confidence: float = DEFAULT_CONFIDENCE
    interrupt_after: int | None = None  # ConversationRelay: speaks over the assistant after N words


@dataclass(frozen=True)
class Digits:
    keys: str


@dataclass(frozen=True)
class Silence:
    pass


@dataclass(frozen=True)
class HangUp:
    pass


Reply = Union[Speech, Digits, Silence, HangUp]


class Conversation(Protocol):
    async def reply(self, heard: str) -> Reply:
        """The callee's answer to what it heard since its last reply."""
        ...

    def while_holding(self) -> Speech | None:
        """What the callee says into a silence the assistant leaves, if anything."""
        ...


class CalleeProfile(Protocol):
    """How a callee picks up, and a fresh conversation for each call."""

    @property
    def answer(self) -> Answer: ...

    @property
    def ring_seconds(self) -> float: ...

    @property
    def greeting_seconds(self) -> float: ...

    @property
    def beep(self) -> bool: ...

    def start_conversation(self) -> Conversation: ...


@dataclass(frozen=True)
class CalleeScript:
    """A scripted callee: replies are consumed one per Gather/Record, silence after."""

    answer: Answer = "human"
    ring_seconds: float = DEFAULT_RING_SECONDS
    replies: tuple[Reply, ...] = ()
    greeting_seconds: float = DEFAULT_GREETING_SECONDS
    beep: bool = True
    speak_while_holding: tuple[Speech, ...] = ()

    def start_conversation(self) -> Conversation:
        if self.answer == "machine":
            return _MachineConversation()
        return _ScriptedConversation(list(self.replies), list(self.speak_while_holding))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str = "callee") -> CalleeScript:
        return _parse_script(data, name)


@dataclass(frozen=True)
class FriendlyCallee:
    """The default for unmapped numbers: answers and says "Okay, thanks" at each prompt."""

    text: str = "Okay, thanks"
    answer: Answer = "human"
    ring_seconds: float = DEFAULT_RING_SECONDS
    greeting_seconds: float = DEFAULT_GREETING_SECONDS
    beep: bool = True

    def start_conversation(self) -> Conversation:
        return _RepeatingConversation(Speech(self.text))


Responder = Callable[[str], Union[str, Reply, None, Awaitable[Union[str, Reply, None]]]]


@dataclass(frozen=True)
class InteractiveCallee:
    """A callee whose replies come from `responder(heard)`, sync or async.

    The responder returns the text the callee says, a `Reply`, or None/"" for silence.
    A sync responder runs in a worker thread, so it may block (reading stdin, say)."""

    responder: Responder
    answer: Answer = "human"
    ring_seconds: float = DEFAULT_RING_SECONDS
    greeting_seconds: float = DEFAULT_GREETING_SECONDS
    beep: bool = True
    confidence: float = DEFAULT_CONFIDENCE

    def start_conversation(self) -> Conversation:
        return _InteractiveConversation(self.responder, self.confidence)


@dataclass
class _ScriptedConversation:
    pending: list[Reply]
    holding: list[Speech] = field(default_factory=list)

    async def reply(self, heard: str) -> Reply:
        return self.pending.pop(0) if self.pending else Silence()

    def while_holding(self) -> Speech | None:
        return self.holding.pop(0) if self.holding else None


class _MachineConversation:
    async def reply(self, heard: str) -> Reply:
        return Silence()

    def while_holding(self) -> Speech | None:
        return None


@dataclass
class _RepeatingConversation:
    each: Reply

    async def reply(self, heard: str) -> Reply:
        return self.each

    def while_holding(self) -> Speech | None:
        return None


@dataclass
class _InteractiveConversation:
    responder: Responder
    confidence: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def while_holding(self) -> Speech | None:
        return None

    async def reply(self, heard: str) -> Reply:
        async with self.lock:
            if inspect.iscoroutinefunction(self.responder):
                answer = await self.responder(heard)
            else:
                answer = await asyncio.to_thread(self.responder, heard)
                if inspect.isawaitable(answer):
                    answer = await answer
        return self._as_reply(cast(Union[str, Reply, None], answer))

    def _as_reply(self, answer: str | Reply | None) -> Reply:
        if isinstance(answer, (Speech, Digits, Silence, HangUp)):
            return answer
        if answer is None or not answer.strip():
            return Silence()
        return Speech(answer.strip(), self.confidence)


def _parse_script(data: Mapping[str, Any], name: str) -> CalleeScript:
    if not isinstance(data, Mapping):
        raise CalleeScriptError(f"{name}: a callee script must be a mapping, got {type(data).__name__}")
    unknown = set(data) - {"answer", "ring_seconds", "replies", "greeting_seconds", "beep", "speak_while_holding"}
    if unknown:
        raise CalleeScriptError(f"{name}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    answer = data.get("answer", "human")
    if answer not in ANSWERS:
        raise CalleeScriptError(f"{name}: answer must be one of {', '.join(ANSWERS)}, got {answer!r}")
    replies = data.get("replies", [])
    if not isinstance(replies, list):
        raise CalleeScriptError(f"{name}: replies must be a list")
    beep = data.get("beep", True)
    if not isinstance(beep, bool):
        raise CalleeScriptError(f"{name}: beep must be true or false")
    holding = data.get("speak_while_holding", [])
    if not isinstance(holding, list):
        raise CalleeScriptError(f"{name}: speak_while_holding must be a list such as [{{say: 'Oh, and'}}]")
    return CalleeScript(
        answer=cast(Answer, answer),
        ring_seconds=_seconds(data, "ring_seconds", DEFAULT_RING_SECONDS, name),
        replies=tuple(_parse_reply(item, f"{name}: replies[{index}]") for index, item in enumerate(replies)),
        greeting_seconds=_seconds(data, "greeting_seconds", DEFAULT_GREETING_SECONDS, name),
        beep=beep,
        speak_while_holding=tuple(_holding_line(item, f"{name}: speak_while_holding[{index}]")
                                  for index, item in enumerate(holding)),
    )


def _holding_line(item: Any, where: str) -> Speech:
    if not isinstance(item, Mapping) or "say" not in item or not set(item) <= {"say", "confidence"}:
        raise CalleeScriptError(f"{where}: a line said while held is {{say: 'text'}} (+confidence)")
    return _speech(item, where)


def _seconds(data: Mapping[str, Any], key: str, default: float, name: str) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise CalleeScriptError(f"{name}: {key} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _parse_reply(item: Any, where: str) -> Reply:
    if not isinstance(item, Mapping) or not item:
        raise CalleeScriptError(f"{where}: a reply is a mapping such as {{say: 'Hello'}}")
    keys = set(item)
    if "say" in keys and keys <= {"say", "confidence", "interrupt_after"}:
        return _speech(item, where)
    if keys == {"digits"}:
        return _digits(item["digits"], where)
    if keys == {"silence"} and item["silence"] is True:
        return Silence()
    if keys == {"hangup"} and item["hangup"] is True:
        return HangUp()
    raise CalleeScriptError(
        f"{where}: expected one of say (+confidence, interrupt_after), digits, silence: true, hangup: true; got {dict(item)!r}"
    )


def _speech(item: Mapping[str, Any], where: str) -> Speech:
    text, confidence = item["say"], item.get("confidence", DEFAULT_CONFIDENCE)
    if not isinstance(text, str) or not text.strip():
        raise CalleeScriptError(f"{where}: say must be non-empty text")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise CalleeScriptError(f"{where}: confidence must be between 0.0 and 1.0, got {confidence!r}")
    cut = item.get("interrupt_after")
    if cut is not None and (isinstance(cut, bool) or not isinstance(cut, int) or cut < 0):
        raise CalleeScriptError(f"{where}: interrupt_after must be a number of words >= 0, got {cut!r}")
    return Speech(text.strip(), float(confidence), cut)


def _digits(keys: Any, where: str) -> Digits:
    keys = str(keys) if isinstance(keys, int) and not isinstance(keys, bool) else keys
    if not isinstance(keys, str) or not keys or not set(keys) <= DTMF_KEYS:
        raise CalleeScriptError(f"{where}: digits must be keys from 0-9, *, #, A-D, got {keys!r}")
    return Digits(keys)


@dataclass(frozen=True)
class CalleeBook:
    """Numbers mapped to callee profiles, and the profile for every other number."""

    by_number: Mapping[str, CalleeProfile] = field(default_factory=dict)
    default: CalleeProfile = field(default_factory=FriendlyCallee)

    def profile_for(self, number: str) -> CalleeProfile:
        return self.by_number.get(number, self.default)


def _number_key(key: Any) -> str:
    # YAML reads an unquoted +13125550101 as the integer 13125550101.
    if isinstance(key, int) and not isinstance(key, bool):
        return f"+{key}"
    return str(key)


def load_callee_book(path: str | Path) -> CalleeBook:
    """Read a YAML (or JSON) file mapping numbers to scripts; the key `default` is the
    script for unmapped numbers."""
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise CalleeScriptError(f"cannot read callee file {source}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise CalleeScriptError(f"{source} is not valid YAML: {error}") from error
    return callee_book_from_dict(data or {}, name=str(source))


def callee_book_from_dict(data: Any, *, name: str = "callees") -> CalleeBook:
    if not isinstance(data, Mapping):
        raise CalleeScriptError(f"{name}: expected a mapping of phone numbers to callee scripts")
    scripts = {_number_key(key): _parse_script(script or {}, f"{name}: {key}") for key, script in data.items()}
    default = scripts.pop("default", None)
    for number in scripts:
        if not number.startswith("+"):
            raise CalleeScriptError(f"{name}: {number!r} is not an E.164 number (+ and digits)")
    return CalleeBook(by_number=scripts, default=default or FriendlyCallee())
