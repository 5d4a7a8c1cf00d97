"""The call-transport port: the neutral language between the conversation core and whatever
carries a call (Twilio's TwiML/Gather today; a ConversationRelay WebSocket can be a second).

Events come in (the callee answered, said something, said nothing, pressed keys, spoke over
the assistant, the call's status moved, or the line is free for the next thing to do);
commands go out (say, ask = say and listen, hold, press digits, end the call with optional
last lines). A transport parses its provider's requests into events and renders commands
into what its provider understands; the core never sees either. Modelled on openclaw's
voice-call provider (verify, parse event, initiate, hang up, speak, send digits, status) and
pipecat's frame serializers (provider messages ⇄ neutral frames)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from twilio_caller.call_status import CallStatus
from twilio_caller.settings import Relay

if TYPE_CHECKING:
    from twilio_caller.safety import Approval

# -- how the assistant sounds and what it says ------------------------------------------------


@dataclass(frozen=True)
class Speech:
    """How the assistant sounds and how it listens."""

    voice: str
    language: str | None  # of the spoken lines; None when the voice itself fixes it (Polly.*, Google.*)
    recognition_language: str
    speech_timeout: str
    timeout: int
    speech_model: str
    hints: Sequence[str]
    relay: Relay = Relay()  # the ConversationRelay attributes (engine relay)


@dataclass(frozen=True)
class Line:
    """A line the assistant says: `text` for the transcript, and pre-generated audio to play
    in its place when there is some (else the transport speaks the text); `language` when the
    line is in another language than the call's."""

    text: str
    audio_url: str | None = None
    language: str | None = None


Spoken = str | Line


class CallLine(Protocol):
    """What a transport needs to know about a call to address it."""

    @property
    def call_id(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def speech(self) -> Speech: ...
    @property
    def engine(self) -> str: ...  # gather (TwiML) or relay (a ConversationRelay socket)


# -- events in ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """The call was picked up: by `answered_by` (human, machine, fax, unknown) when known."""

    answered_by: str | None = None


@dataclass(frozen=True)
class Heard:
    """The callee's words in listening turn `turn` (empty or blank text counts as silence)."""

    turn: int
    text: str
    confidence: float | None
    dedupe_key: str


@dataclass(frozen=True)
class Silence:
    """Listening turn `turn` ended with nothing said."""

    turn: int


@dataclass(frozen=True)
class Digits:
    """The callee pressed keys in listening turn `turn`."""

    turn: int
    digits: str
    dedupe_key: str


@dataclass(frozen=True)
class Interrupted:
    """The callee spoke over the assistant: `heard` is what of the line they actually heard."""

    heard: str


@dataclass(frozen=True)
class Ready:
    """The line is free again (after a said line, a hold or pressed digits): the transport asks
    for the next command, quoting the `resume` number the command before gave it. `text` is
    what the callee said while held (a hold listens), if anything."""

    resume: int
    text: str = ""
    confidence: float | None = None


@dataclass(frozen=True)
class StatusChanged:
    """The provider reports the call's status; `details` are its own words, for the record."""

    status: CallStatus
    sequence: int | None = None
    answered_by: str | None = None
    duration_seconds: int | None = None
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Detected:
    """Answering-machine detection decided after the call was answered (asynchronous
    detection): `answered_by` is human, machine, fax or unknown; `details` are the provider's
    own words, for the record."""

    answered_by: str
    details: Mapping[str, str] = field(default_factory=dict)


Event = Answered | Heard | Silence | Digits | Interrupted | Ready | StatusChanged | Detected


# -- commands out ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    """Speak without listening, then come back as `Ready(resume)`."""

    lines: tuple[Spoken, ...]
    resume: int


@dataclass(frozen=True)
class Ask:
    """Speak and listen: what the callee says comes back as `Heard`/`Silence` of `turn`."""

    lines: tuple[Spoken, ...]
    turn: int


@dataclass(frozen=True)
class Hold:
    """Nothing to say yet: keep the line open, listening, and come back as `Ready(resume)`
    (with what the callee said meanwhile, if anything); `lines` (an acknowledgement) are said
    first."""

    resume: int
    lines: tuple[Spoken, ...] = ()


@dataclass(frozen=True)
class SendDigits:
    """Press DTMF keys into the call (a phone menu), then come back as `Ready(resume)`."""

    digits: str
    resume: int


@dataclass(frozen=True)
class EndCall:
    """Say the last lines, if any, then hang up."""

    lines: tuple[Spoken, ...] = ()


@dataclass(frozen=True)
class Reconnect:
    """The streaming session of the call ended without our end (its socket dropped): carry
    the call on over a new one, starting at `Ready(resume)`, at listening turn `reask` asked
    again (nothing heard), or — neither — at the call's answer (its opening)."""

    resume: int | None = None
    reask: int | None = None


SessionCommand = Say | Ask | Hold | SendDigits | EndCall  # what the line does within a session
Command = SessionCommand | Reconnect


# -- the transport ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """A call the provider accepted: its id there and its first status."""

    sid: str
    status: str


@dataclass(frozen=True)
class ProviderCall:
    """A call as the provider knows it now."""

    status: str
    duration: str | int | None
    answered_by: str | None


class Renderer(Protocol):
    """What the conversation core needs of a transport: a command as the provider's answer."""

    def render(self, line: CallLine, command: Command) -> str: ...


class CallTransport(Renderer, Protocol):
    """One way to carry calls. `verify` and `parse_event` turn a provider's request into an
    event (or refuse it); the rest act on a live call through the provider's API."""

    def verify(self, url: str, params: Mapping[str, str], signature: str) -> bool: ...

    def parse_event(self, line: CallLine, kind: str, query: Mapping[str, str],
                    params: Mapping[str, str]) -> Event | None: ...

    def initiate(self, approval: Approval, line: CallLine, *, ring_timeout: int,
                 send_digits: str | None, detection: str = "sync") -> Placed: ...

    def resume_at(self, sid: str, line: CallLine, resume: int) -> None: ...

    def send_digits(self, sid: str, line: CallLine, digits: str, resume: int) -> None: ...

    def hang_up(self, sid: str, status: str, line: CallLine | None = None, text: str | None = None) -> None: ...

    def reattach(self, sid: str, line: CallLine, *, resume: int | None = None,
                 reask: int | None = None, goodbye: str | None = None) -> None: ...

    def fetch_status(self, sid: str) -> ProviderCall: ...
