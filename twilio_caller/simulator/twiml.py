"""TwiML documents as Twilio reads them: parsed with xml.etree into verb objects.

Unparsable XML, a root other than <Response>, an unknown verb or a noun where it does
not belong fail the document with 12100. Unknown attributes and unusable attribute
values are schema warnings (12200): Twilio logs them and uses the default."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

from twilio_caller.simulator.errors import DOCUMENT_PARSE_FAILURE, CallFailure

AUTO = "auto"


@dataclass(frozen=True)
class Say:
    text: str
    voice: str | None = None
    language: str | None = None
    loop: int = 1


@dataclass(frozen=True)
class Play:
    url: str
    loop: int = 1
    digits: str | None = None


@dataclass(frozen=True)
class Pause:
    length: float = 1.0


Prompt = Union[Say, Play, Pause]


@dataclass(frozen=True)
class Gather:
    prompts: tuple[Prompt, ...] = ()
    input: frozenset[str] = frozenset({"dtmf"})
    action: str | None = None
    method: str = "POST"
    timeout: float = 5.0
    speech_timeout: float | str | None = None
    finish_on_key: str = "#"
    num_digits: int | None = None
    action_on_empty_result: bool = False
    language: str = "en-US"

    @property
    def silence_after_speech(self) -> float:
        if self.speech_timeout == AUTO:
            return 1.0
        if isinstance(self.speech_timeout, float):
            return self.speech_timeout
        return self.timeout


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str = "POST"


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Record:
    action: str | None = None
    method: str = "POST"
    timeout: float = 5.0
    finish_on_key: str = "1234567890*#"
    max_length: float = 3600.0
    play_beep: bool = True


@dataclass(frozen=True)
class ConversationRelay:
    """`<Connect action method><ConversationRelay url …/></Connect>` (issue 17): the call's
    audio goes to the application's WebSocket; `action` is asked when the session ends."""

    url: str
    action: str | None
    method: str
    attributes: tuple[tuple[str, str], ...] = ()
    languages: tuple[tuple[tuple[str, str], ...], ...] = ()  # the <Language> elements' attributes


Verb = Union[Say, Play, Pause, Gather, Redirect, Hangup, Record, ConversationRelay]


@dataclass(frozen=True)
class SchemaWarning:
    message: str


@dataclass(frozen=True)
class Document:
    verbs: tuple[Verb, ...]
    warnings: tuple[SchemaWarning, ...] = ()


ATTRIBUTES: dict[str, frozenset[str]] = {
    "Say": frozenset({"voice", "language", "loop"}),
    "Play": frozenset({"loop", "digits"}),
    "Pause": frozenset({"length"}),
    "Gather": frozenset(
        {
            "input", "action", "method", "timeout", "speechTimeout", "maxSpeechTime",
            "profanityFilter", "finishOnKey", "numDigits", "partialResultCallback",
            "partialResultCallbackMethod", "language", "hints", "bargeIn", "debug",
            "actionOnEmptyResult", "speechModel", "enhanced",
        }
    ),
    "Redirect": frozenset({"method"}),
    "Hangup": frozenset(),
    "Connect": frozenset({"action", "method"}),
    "Record": frozenset(
        {
            "action", "method", "timeout", "finishOnKey", "maxLength", "playBeep", "trim",
            "recordingStatusCallback", "recordingStatusCallbackMethod",
            "recordingStatusCallbackEvent", "transcribe", "transcribeCallback",
            "recordingConfigurationId", "storageUrl", "storageUrlMethod",
        }
    ),
}
# Verbs Twilio knows that this simulator does not model.
UNSUPPORTED = frozenset(
    {"Dial", "Enqueue", "Leave", "Start", "Stop", "Pay", "Prompt", "Refer", "Sms", "Reject", "Echo", "Queue"}
)
SSML_TAGS = frozenset({"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w"})


def parse(text: str | bytes) -> Document:
    try:
        root = ET.fromstring(text.encode() if isinstance(text, str) else text)
    except ET.ParseError as error:
        raise CallFailure(DOCUMENT_PARSE_FAILURE, f"Document parse failure: {error}") from None
    if root.tag != "Response":
        raise CallFailure(DOCUMENT_PARSE_FAILURE, f"Document root must be <Response>, not <{root.tag}>")
    reader = _Reader()
    verbs = tuple(reader.verb(element) for element in root)
    return Document(verbs, tuple(reader.warnings))


@dataclass
class _Reader:
    warnings: list[SchemaWarning] = field(default_factory=list)

    def verb(self, element: ET.Element) -> Verb:
        builder = self._builders().get(element.tag)
        if builder is None:
            raise CallFailure(DOCUMENT_PARSE_FAILURE, _unknown(element.tag))
        self._check_attributes(element)
        return builder(element)

    def _builders(self) -> dict[str, Callable[[ET.Element], Verb]]:
        return {
            "Say": self._say,
            "Play": self._play,
            "Pause": self._pause,
            "Gather": self._gather,
            "Redirect": self._redirect,
            "Hangup": self._hangup,
            "Record": self._record,
            "Connect": self._connect,
        }

    def _check_attributes(self, element: ET.Element) -> None:
        for name in sorted(set(element.attrib) - ATTRIBUTES[element.tag]):
            self.warnings.append(SchemaWarning(f"<{element.tag}> has unknown attribute {name!r}"))

    def _no_children(self, element: ET.Element) -> None:
        for child in element:
            raise CallFailure(DOCUMENT_PARSE_FAILURE, f"<{child.tag}> is not allowed inside <{element.tag}>")

    def _say(self, element: ET.Element) -> Say:
        for child in element.iter():
            if child is not element and child.tag not in SSML_TAGS:
                raise CallFailure(DOCUMENT_PARSE_FAILURE, f"<{child.tag}> is not allowed inside <Say>")
        text = " ".join("".join(element.itertext()).split())
        return Say(text, element.get("voice"), element.get("language"), self._int(element, "loop", 1, minimum=0))

    def _play(self, element: ET.Element) -> Play:
        self._no_children(element)
        url = (element.text or "").strip()
        digits = element.get("digits")
        if not url and not digits:
            raise CallFailure(DOCUMENT_PARSE_FAILURE, "<Play> needs a URL or a digits attribute")
        return Play(url, self._int(element, "loop", 1, minimum=0), digits)

    def _pause(self, element: ET.Element) -> Pause:
        self._no_children(element)
        return Pause(float(self._int(element, "length", 1, minimum=0)))

    def _gather(self, element: ET.Element) -> Gather:
        prompts: list[Prompt] = []
        for child in element:
            if child.tag not in ("Say", "Play", "Pause"):
                raise CallFailure(DOCUMENT_PARSE_FAILURE, f"<{child.tag}> is not allowed inside <Gather>")
            self._check_attributes(child)
            prompts.append(self._prompt(child))
        return Gather(
            prompts=tuple(prompts),
            input=self._input(element),
            action=_url_attribute(element, "action"),
            method=self._method(element, "method"),
            timeout=float(self._int(element, "timeout", 5, minimum=1)),
            speech_timeout=self._speech_timeout(element),
            finish_on_key=element.get("finishOnKey", "#"),
            num_digits=self._optional_int(element, "numDigits"),
            action_on_empty_result=self._bool(element, "actionOnEmptyResult", False),
            language=element.get("language", "en-US"),
        )

    def _prompt(self, element: ET.Element) -> Prompt:
        if element.tag == "Say":
            return self._say(element)
        if element.tag == "Play":
            return self._play(element)
        return self._pause(element)

    def _redirect(self, element: ET.Element) -> Redirect:
        self._no_children(element)
        url = (element.text or "").strip()
        if not url:
            raise CallFailure(DOCUMENT_PARSE_FAILURE, "<Redirect> needs a URL")
        return Redirect(url, self._method(element, "method"))

    def _connect(self, element: ET.Element) -> ConversationRelay:
        children = list(element)
        if len(children) != 1 or children[0].tag != "ConversationRelay":
            raise CallFailure(DOCUMENT_PARSE_FAILURE, "<Connect> needs exactly one <ConversationRelay> (the only noun modelled)")
        relay = children[0]
        url = relay.get("url", "")
        if not url.startswith(("wss://", "ws://")):
            raise CallFailure(DOCUMENT_PARSE_FAILURE, "<ConversationRelay> needs a ws:// or wss:// url")
        languages = []
        for child in relay:
            if child.tag != "Language" or not child.get("code"):
                raise CallFailure(DOCUMENT_PARSE_FAILURE, "<ConversationRelay> takes <Language code=…> elements only")
            languages.append(tuple(sorted(child.attrib.items())))
        return ConversationRelay(url, _url_attribute(element, "action"), self._method(element, "method"),
                                 tuple(sorted(relay.attrib.items())), tuple(languages))

    def _hangup(self, element: ET.Element) -> Hangup:
        self._no_children(element)
        return Hangup()

    def _record(self, element: ET.Element) -> Record:
        self._no_children(element)
        return Record(
            action=_url_attribute(element, "action"),
            method=self._method(element, "method"),
            timeout=float(self._int(element, "timeout", 5, minimum=0)),
            finish_on_key=element.get("finishOnKey", "1234567890*#"),
            max_length=float(self._int(element, "maxLength", 3600, minimum=1)),
            play_beep=self._bool(element, "playBeep", True),
        )

    def _input(self, element: ET.Element) -> frozenset[str]:
        raw = element.get("input")
        if raw is None:
            return frozenset({"dtmf"})
        kinds = frozenset(raw.split())
        if not kinds or not kinds <= {"dtmf", "speech"}:
            self._warn(element, "input", raw)
            return frozenset({"dtmf"})
        return kinds

    def _speech_timeout(self, element: ET.Element) -> float | str | None:
        raw = element.get("speechTimeout")
        if raw is None or raw == AUTO:
            return raw
        value = _as_int(raw)
        if value is None or value < 0:
            self._warn(element, "speechTimeout", raw)
            return None
        return float(value)

    def _method(self, element: ET.Element, name: str) -> str:
        raw = element.get(name, "POST")
        if raw.upper() not in ("GET", "POST"):
            self._warn(element, name, raw)
            return "POST"
        return raw.upper()

    def _int(self, element: ET.Element, name: str, default: int, *, minimum: int) -> int:
        raw = element.get(name)
        if raw is None:
            return default
        value = _as_int(raw)
        if value is None or value < minimum:
            self._warn(element, name, raw)
            return default
        return value

    def _optional_int(self, element: ET.Element, name: str) -> int | None:
        raw = element.get(name)
        if raw is None:
            return None
        value = _as_int(raw)
        if value is None or value < 1:
            self._warn(element, name, raw)
            return None
        return value

    def _bool(self, element: ET.Element, name: str, default: bool) -> bool:
        raw = element.get(name)
        if raw is None:
            return default
        if raw.lower() not in ("true", "false"):
            self._warn(element, name, raw)
            return default
        return raw.lower() == "true"

    def _warn(self, element: ET.Element, name: str, raw: str) -> None:
        self.warnings.append(SchemaWarning(f"<{element.tag}> {name}={raw!r} is not valid; using the default"))


def _unknown(tag: str) -> str:
    if tag in UNSUPPORTED:
        return f"<{tag}> is a Twilio verb the simulator does not support"
    return f"<{tag}> is not a TwiML voice verb"


def _url_attribute(element: ET.Element, name: str) -> str | None:
    value = element.get(name)
    return value.strip() if value and value.strip() else None


def _as_int(raw: str) -> int | None:
    try:
        return int(raw.strip())
    except ValueError:
        return None
