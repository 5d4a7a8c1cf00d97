"""The config, typed: one frozen dataclass per section of skill.yaml's configSchema, built once
from a validated `Config` (`config.settings`). The rest of the package receives these instead
of looking keys up by dotted string; a reloaded config (`Runtime.rules_in_force`) builds fresh
ones, so a setting is never read from a config that has since changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from twilio_caller.errors import ConfigError

DEFAULT_ELEVENLABS_URL = "https://api.elevenlabs.io"
DEFAULT_OUTPUT_FORMAT = "mp3_22050_32"
DEFAULT_BUDGET_SECONDS = 1.5
DEFAULT_PREGENERATE_SECONDS = 8.0


@dataclass(frozen=True)
class Identity:
    assistant_name: str
    owner_name: str
    opening: str

    def fill(self, text: str) -> str:
        """`text` with {assistant} and {owner} replaced by the configured names."""
        return text.replace("{assistant}", self.assistant_name).replace("{owner}", self.owner_name)

    @property
    def opening_text(self) -> str:
        """The opening line every call starts with, names filled in."""
        return self.opening.format(assistant=self.assistant_name, owner=self.owner_name)


@dataclass(frozen=True)
class Voice:
    default: str
    language: str


@dataclass(frozen=True)
class Gather:
    speech_timeout: str  # "auto" or a number of seconds, as TwiML spells it
    timeout: int
    speech_model: str
    hints: tuple[str, ...]
    reprompts: int


@dataclass(frozen=True)
class RelayLanguage:
    """A `<Language>` element: the voice and recognition ConversationRelay uses for `code`."""

    code: str
    voice: str | None = None
    transcription_provider: str | None = None
    speech_model: str | None = None


@dataclass(frozen=True)
class Relay:
    """ConversationRelay's attributes beyond the call's voice and language (None: Twilio's
    default; `hints` None: the Gather hints)."""

    transcription_provider: str | None = None
    speech_model: str | None = None
    tts_language: str | None = None
    transcription_language: str | None = None
    hints: tuple[str, ...] | None = None
    elevenlabs_text_normalization: str | None = None
    languages: tuple[RelayLanguage, ...] = ()
    welcome_greeting: bool = False


@dataclass(frozen=True)
class Conversation:
    closing: str
    hold_budget_seconds: float
    unsteered_limit_seconds: float
    acknowledge_after_seconds: float
    acknowledgements: tuple[str, ...]
    engine: str = "gather"
    relay: Relay = Relay()


@dataclass(frozen=True)
class Webhook:
    host: str
    port: int


@dataclass(frozen=True)
class Tunnel:
    provider: str
    domain: str | None
    region: str | None
    authtoken: str | None = field(repr=False)
    ngrok_path: str | None


@dataclass(frozen=True)
class Server:
    idle_exit_seconds: float


@dataclass(frozen=True)
class Twilio:
    api_base_url: str
    from_number: str | None
    ring_timeout_seconds: int
    account_sid: str | None = field(repr=False)
    auth_token: str | None = field(repr=False)

    def account(self) -> tuple[str, str, str]:
        """(account SID, auth token, caller ID); ConfigError naming the variables to set."""
        sid, token, number = self.account_sid, self.auth_token, self.from_number
        if not (sid and token and number):
            missing = [variable for value, variable in ((sid, "TWILIO_ACCOUNT_SID"), (token, "TWILIO_AUTH_TOKEN"),
                                                        (number, "TWILIO_FROM_NUMBER")) if not value]
            raise ConfigError(
                f"Twilio is not set up: set {', '.join(missing)} in the environment "
                "(or twilio.* in config.yaml), or try it offline with --simulate"
            )
        return sid, token, number


@dataclass(frozen=True)
class Safety:
    timezone: str
    calling_hours: str
    callee_hours: str | None
    max_calls_per_contact_per_day: int
    max_duration_seconds: int
    allowed_countries: tuple[str, ...]
    blocked: tuple[str, ...]
    max_concurrent_calls: int
    max_calls_per_day: int
    min_seconds_between_calls_to_contact: float
    disclosure_required: bool

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ElevenLabsSettings:
    api_base_url: str = DEFAULT_ELEVENLABS_URL
    api_key: str | None = field(default=None, repr=False)
    voice_id: str | None = None
    model: str | None = None
    output_format: str = DEFAULT_OUTPUT_FORMAT
    voice_settings: Mapping[str, Any] | None = None
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    pregenerate_seconds: float = DEFAULT_PREGENERATE_SECONDS


@dataclass(frozen=True)
class Voicemail:
    mode: str  # leave-message, hang-up or wait-for-person
    detection: str  # async, sync or off


@dataclass(frozen=True)
class Retention:
    days: int


@dataclass(frozen=True)
class Scheduling:
    missed_after_minutes: float


@dataclass(frozen=True)
class StoreSettings:
    url: str | None = field(default=None, repr=False)  # PostgreSQL; None: the home's SQLite file


@dataclass(frozen=True)
class Settings:
    phone_region: str
    public_url: str | None
    phrases: tuple[str, ...]
    identity: Identity
    voice: Voice
    gather: Gather
    conversation: Conversation
    webhook: Webhook
    tunnel: Tunnel
    server: Server
    twilio: Twilio
    safety: Safety
    elevenlabs: ElevenLabsSettings
    voicemail: Voicemail
    retention: Retention
    scheduling: Scheduling
    store: StoreSettings

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Settings:
        """From config values already merged with their defaults and validated by the schema."""
        return cls(
            phone_region=str(values["phone_region"]),
            public_url=_text(values["public_url"]),
            phrases=tuple(values["phrases"]),
            identity=Identity(**_pick(values["identity"], "assistant_name", "owner_name", "opening")),
            voice=Voice(**_pick(values["voice"], "default", "language")),
            gather=_gather(values["gather"]),
            conversation=Conversation(**_pick(values["conversation"], "closing", "hold_budget_seconds",
                                                "unsteered_limit_seconds", "acknowledge_after_seconds",
                                                "engine"),
                                      acknowledgements=tuple(values["conversation"]["acknowledgements"]),
                                      relay=_relay(values["conversation"]["relay"])),
            webhook=Webhook(**_pick(values["webhook"], "host", "port")),
            tunnel=_tunnel(values["tunnel"]),
            server=Server(**_pick(values["server"], "idle_exit_seconds")),
            twilio=_twilio(values["twilio"]),
            safety=_safety(values["safety"]),
            elevenlabs=_elevenlabs(values["elevenlabs"]),
            voicemail=Voicemail(**_pick(values["voicemail"], "mode", "detection")),
            retention=Retention(**_pick(values["retention"], "days")),
            scheduling=Scheduling(**_pick(values["scheduling"], "missed_after_minutes")),
            store=StoreSettings(url=_text(values["store"]["url"])),
        )


def _pick(values: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: values[name] for name in names}


def _text(value: Any) -> str | None:
    """A string setting that may be absent: None, or its text with surrounding space removed."""
    text = str(value).strip() if value is not None else ""
    return text or None


def _gather(values: Mapping[str, Any]) -> Gather:
    return Gather(speech_timeout=str(values["speech_timeout"]), timeout=values["timeout"],
                  speech_model=values["speech_model"], hints=tuple(values["hints"]),
                  reprompts=values["reprompts"])


def _relay(values: Mapping[str, Any]) -> Relay:
    hints = values["hints"]
    return Relay(
        **_pick(values, "transcription_provider", "speech_model", "tts_language", "transcription_language",
                "elevenlabs_text_normalization", "welcome_greeting"),
        hints=None if hints is None else tuple(hints),
        languages=tuple(RelayLanguage(**language) for language in values["languages"]),
    )


def _tunnel(values: Mapping[str, Any]) -> Tunnel:
    return Tunnel(provider=values["provider"], domain=values["domain"], region=_text(values["region"]),
                  authtoken=_text(values["authtoken"]), ngrok_path=values["ngrok_path"])


def _twilio(values: Mapping[str, Any]) -> Twilio:
    return Twilio(api_base_url=values["api_base_url"], from_number=values["from_number"] or None,
                  ring_timeout_seconds=values["ring_timeout_seconds"],
                  account_sid=values["account_sid"] or None, auth_token=values["auth_token"] or None)


def _safety(values: Mapping[str, Any]) -> Safety:
    return Safety(
        timezone=values["timezone"], calling_hours=values["calling_hours"],
        callee_hours=values["callee_hours"] or None,
        max_calls_per_contact_per_day=values["max_calls_per_contact_per_day"],
        max_duration_seconds=values["max_duration_seconds"],
        allowed_countries=tuple(values["allowed_countries"]), blocked=tuple(values["blocked"]),
        max_concurrent_calls=values["max_concurrent_calls"], max_calls_per_day=values["max_calls_per_day"],
        min_seconds_between_calls_to_contact=values["min_seconds_between_calls_to_contact"],
        disclosure_required=values["disclosure_required"],
    )


def _elevenlabs(values: Mapping[str, Any]) -> ElevenLabsSettings:
    return ElevenLabsSettings(
        api_base_url=values["api_base_url"], api_key=values["api_key"] or None,
        voice_id=values["voice_id"] or None, model=values["model"] or None,
        output_format=values["output_format"] or DEFAULT_OUTPUT_FORMAT,
        voice_settings=values["voice_settings"], budget_seconds=values["budget_seconds"],
        pregenerate_seconds=values["pregenerate_seconds"],
    )
