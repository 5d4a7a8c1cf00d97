"""A call request, built from the raw arguments of `call` (`CallRequest`). A contact name is
looked up (regardless of case); a number in any common form becomes E.164. Emergency and
short numbers are not errors here: they reach safety, which refuses them (`never_dial`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twilio_caller import numbers, voices
from twilio_caller.contacts import ContactBook, check_text, check_voice
from twilio_caller.errors import ConfigError, InvalidInputError
from twilio_caller.settings import ElevenLabsSettings, Settings
from twilio_caller.store.ports import Contact

MESSAGE_MAX = 1200  # what fits in a call; run_command allows 1000 of the user's own words plus its framing
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
ENGINES = ("gather", "relay")  # TwiML Say/Gather, or a ConversationRelay WebSocket


@dataclass(frozen=True)
class CallRequest:
    number: numbers.PhoneNumber
    contact: Contact | None
    message: str
    interactive: bool
    keep_open: bool
    voice: str
    language: str
    closing: str | None
    engine: str = "gather"

    @property
    def to_number(self) -> str:
        return self.number.e164

    @property
    def to_name(self) -> str | None:
        return self.contact.name if self.contact else None


def parse_call(
    book: ContactBook,
    *,
    to: str,
    message: str,
    region: str,
    default_voice: str,
    default_language: str,
    interactive: bool = False,
    keep_open: bool = False,
    voice: str | None = None,
    language: str | None = None,
    closing: str | None = None,
    engine: str = "gather",
    elevenlabs: ElevenLabsSettings | None = None,
) -> CallRequest:
    text = check_message(message)  # what is said is checked first: it never depends on whom
    checked_closing = check_message(closing, "closing") if closing is not None else None
    checked_engine = check_engine(engine)
    number, contact = resolve_target(book, check_text(to, "to") or "", region)
    chosen = check_voice(voice) or _contact_voice(contact, checked_engine) or default_voice
    return CallRequest(
        number=number,
        contact=contact,
        message=text,
        interactive=interactive or keep_open,
        keep_open=keep_open,
        voice=engine_voice(chosen, checked_engine, elevenlabs or ElevenLabsSettings()),
        language=(language or default_language).strip(),
        closing=checked_closing,
        engine=checked_engine,
    )


def from_arguments(book: ContactBook, settings: Settings, arguments: Mapping[str, Any]) -> CallRequest:
    """A CallRequest from a `call` tool's validated arguments and the config's defaults."""
    engine = arguments.get("engine") or settings.conversation.engine
    if engine == "relay":
        check_language_voices(settings)
    return parse_call(
        book,
        to=arguments["to"], message=arguments["message"],
        region=settings.phone_region,
        default_voice=default_voice(settings, engine),
        default_language=settings.voice.language,
        interactive=arguments.get("interactive", False),
        keep_open=arguments.get("keep_open", False),
        voice=arguments.get("voice"), language=arguments.get("language"),
        closing=arguments.get("closing"),
        engine=engine, elevenlabs=settings.elevenlabs,
    )


def _contact_voice(contact: Contact | None, engine: str) -> str | None:
    """The contact's voice, unless the engine cannot speak it (an ElevenLabs voice on gather:
    then the config's voice, with its pre-generated ElevenLabs audio if set up)."""
    voice = contact.voice if contact else None
    if voice and engine != "relay" and voices.elevenlabs_voice(voice) is not None:
        return None
    return voice


def check_language_voices(settings: Settings) -> None:
    """`conversation.relay.languages` voices are names Twilio knows (read when a relay call is
    placed, like every rule): a ConfigError naming the entry, else Twilio would fail the call."""
    for index, language in enumerate(settings.conversation.relay.languages):
        if language.voice is None:
            continue
        try:
            voices.check_voice(language.voice)
        except InvalidInputError as exc:
            raise ConfigError(f"conversation.relay.languages[{index}] ({language.code}).voice: {exc.message}") from None


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise InvalidInputError(f"engine: {engine!r} is not an engine; use gather (TwiML) or relay "
                                "(ConversationRelay)", field="engine")
    return engine


def default_voice(settings: Settings, engine: str) -> str:
    """The config's voice for a call on `engine`: on relay, the configured ElevenLabs voice
    (streamed by Twilio) when there is one, else `voice.default`."""
    if engine == "relay" and settings.elevenlabs.voice_id:
        return f"{voices.ELEVENLABS}.{settings.elevenlabs.voice_id}"
    return settings.voice.default


def engine_voice(voice: str, engine: str, elevenlabs: ElevenLabsSettings) -> str:
    """The call's voice as it will be used: an ElevenLabs voice completed with the config's
    model and settings (relay only: <Say> cannot speak it); any other voice as chosen."""
    streamed = voices.elevenlabs_voice(voice)
    if streamed is None:
        return voice
    if engine != "relay":
        raise InvalidInputError(
            f"{voice} is an ElevenLabs voice, which Twilio streams on the relay engine only: call with "
            "engine relay, or use a Twilio voice (ElevenLabs audio on the gather engine is pre-generated "
            "from elevenlabs.voice_id)", field="voice")
    return streamed.completed(elevenlabs.model, elevenlabs.voice_settings).name


def resolve_target(book: ContactBook, to: str, region: str) -> tuple[numbers.PhoneNumber, Contact | None]:
    target = to.strip()
    if not target:
        raise InvalidInputError("to: say whom to call: a contact name or a phone number", field="to")
    if numbers.looks_like_number(target):
        number = numbers.parse(target, region)
        return number, book.find_by_number(number.e164)
    contact = book.get(target)
    return numbers.parse(contact.number, region), contact


def check_message(text: str, field: str = "message") -> str:
    cleaned = " ".join(check_text(text, field).split())  # type: ignore[union-attr]
    if not cleaned:
        raise InvalidInputError(f"{field}: must not be empty: say what the call should say", field=field)
    if len(cleaned) > MESSAGE_MAX:
        raise InvalidInputError(
            f"{field}: is {len(cleaned)} characters long; at most {MESSAGE_MAX} fit in a call",
            field=field,
        )
    return cleaned
