"""The Twilio <Say> voices this project knows, each with its language, and the checks built
on them: `check_voice` (canonical spelling, or an error with close suggestions) and
`say_language` (the `language` attribute <Say> should carry for a voice).

Sources (looked up, not guessed):
- Polly names exactly as Twilio spells them: the `SayVoice` type generated into twilio-node's
  `src/twiml/VoiceResponse.ts` (standard, `-Neural` and `-Generative` variants); each voice's
  language from Amazon Polly's "Available voices" table.
- Google voices: the same `SayVoice` type, for the languages in `_GOOGLE` below. Google names
  carry their language (`Google.en-US-Neural2-A` speaks en-US); a Google name in a language
  not carried here is accepted by its shape, since that list is long and grows.
- `man`, `woman` and `alice` with the languages Twilio's <Say> page lists for them.
- ElevenLabs voices (ConversationRelay only, streamed by Twilio): `ElevenLabs.<voiceId>`,
  optionally with Twilio's suffixes `-<model>` and `-<speed>_<stability>_<similarity>` — the
  `voice` attribute Twilio documents is `voiceId-model-speed_stability_similarity`
  (twilio.com/docs/voice/conversationrelay/voice-configuration).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from twilio_caller.errors import InvalidInputError

MAX_SUGGESTIONS = 3


@dataclass(frozen=True)
class Voice:
    name: str  # as Twilio spells it, e.g. Polly.Joanna-Neural
    provider: str  # basic | polly | google
    tier: str  # basic | standard | neural | generative | wavenet | neural2 | chirp3-hd
    language: str  # the language it speaks (basic voices: their default)


# -- Amazon Polly -------------------------------------------------------------------------------

_POLLY_STANDARD = {
    "Aditi": "en-IN", "Amy": "en-GB", "Astrid": "sv-SE", "Bianca": "it-IT", "Brian": "en-GB",
    "Camila": "pt-BR", "Carla": "it-IT", "Carmen": "ro-RO", "Celine": "fr-FR", "Chantal": "fr-CA",
    "Conchita": "es-ES", "Cristiano": "pt-PT", "Dora": "is-IS", "Emma": "en-GB", "Enrique": "es-ES",
    "Ewa": "pl-PL", "Filiz": "tr-TR", "Geraint": "en-GB-WLS", "Giorgio": "it-IT", "Gwyneth": "cy-GB",
    "Hans": "de-DE", "Ines": "pt-PT", "Ivy": "en-US", "Jacek": "pl-PL", "Jan": "pl-PL",
    "Joanna": "en-US", "Joey": "en-US", "Justin": "en-US", "Karl": "is-IS", "Kendra": "en-US",
    "Kevin": "en-US", "Kimberly": "en-US", "Lea": "fr-FR", "Liv": "nb-NO", "Lotte": "nl-NL",
    "Lucia": "es-ES", "Lupe": "es-US", "Mads": "da-DK", "Maja": "pl-PL", "Marlene": "de-DE",
    "Mathieu": "fr-FR", "Matthew": "en-US", "Maxim": "ru-RU", "Mia": "es-MX", "Miguel": "es-US",
    "Mizuki": "ja-JP", "Naja": "da-DK", "Nicole": "en-AU", "Penelope": "es-US", "Raveena": "en-IN",
    "Ricardo": "pt-BR", "Ruben": "nl-NL", "Russell": "en-AU", "Salli": "en-US", "Seoyeon": "ko-KR",
    "Takumi": "ja-JP", "Tatyana": "ru-RU", "Vicki": "de-DE", "Vitoria": "pt-BR", "Zeina": "arb",
    "Zhiyu": "cmn-CN",
}

_POLLY_NEURAL = {
    "Adriano": "it-IT", "Amy": "en-GB", "Andres": "es-MX", "Aria": "en-NZ", "Arlet": "ca-ES",
    "Arthur": "en-GB", "Ayanda": "en-ZA", "Bianca": "it-IT", "Brian": "en-GB", "Burcu": "tr-TR",
    "Camila": "pt-BR", "Daniel": "de-DE", "Danielle": "en-US", "Elin": "sv-SE", "Emma": "en-GB",
    "Gabrielle": "fr-CA", "Gregory": "en-US", "Hala": "ar-AE", "Hannah": "de-AT", "Hiujin": "yue-CN",
    "Ida": "nb-NO", "Ines": "pt-PT", "Isabelle": "fr-BE", "Ivy": "en-US", "Joanna": "en-US",
    "Joey": "en-US", "Justin": "en-US", "Kajal": "en-IN", "Kazuha": "ja-JP", "Kendra": "en-US",
    "Kevin": "en-US", "Kimberly": "en-US", "Laura": "nl-NL", "Lea": "fr-FR", "Liam": "fr-CA",
    "Lisa": "nl-BE", "Lucia": "es-ES", "Lupe": "es-US", "Matthew": "en-US", "Mia": "es-MX",
    "Niamh": "en-IE", "Ola": "pl-PL", "Olivia": "en-AU", "Pedro": "es-US", "Remi": "fr-FR",
    "Ruth": "en-US", "Salli": "en-US", "Seoyeon": "ko-KR", "Sergio": "es-ES", "Sofie": "da-DK",
    "Stephen": "en-US", "Suvi": "fi-FI", "Takumi": "ja-JP", "Thiago": "pt-BR", "Tomoko": "ja-JP",
    "Vicki": "de-DE", "Vitoria": "pt-BR", "Zayd": "ar-AE", "Zhiyu": "cmn-CN",
}

# Twilio spells two generative names with their accents: Polly.Mía-Generative, Polly.Rémi-Generative.
_POLLY_GENERATIVE = {
    "Amy": "en-GB", "Andres": "es-MX", "Ayanda": "en-ZA", "Bianca": "it-IT", "Daniel": "de-DE",
    "Danielle": "en-US", "Joanna": "en-US", "Kajal": "en-IN", "Lea": "fr-FR", "Lucia": "es-ES",
    "Lupe": "es-US", "Matthew": "en-US", "Mía": "es-MX", "Olivia": "en-AU", "Pedro": "es-US",
    "Rémi": "fr-FR", "Ruth": "en-US", "Sergio": "es-ES", "Stephen": "en-US", "Vicki": "de-DE",
}

# -- Google ----------------------------------------------------------------------------------------

_CHIRP3_HD = ("Aoede", "Charon", "Fenrir", "Kore", "Leda", "Orus", "Puck", "Zephyr")

# language → family → the variant letters Twilio lists (every language here also has Chirp3-HD).
_GOOGLE = {
    "en-US": {"Standard": "ABCDEFGHIJ", "Wavenet": "ABCDEFGHIJ", "Neural2": "ACDEFGHIJ"},
    "en-GB": {"Standard": "ABCDFNO", "Wavenet": "ABCDFNO", "Neural2": "ABCDFNO"},
    "en-AU": {"Standard": "ABCD", "Wavenet": "ABCD", "Neural2": "ABCD"},
    "en-IN": {"Standard": "ABCDEF", "Wavenet": "ABCDEF", "Neural2": "ABCD"},
    "de-DE": {"Standard": "ABCDEFGH", "Wavenet": "ABCDEFGH", "Neural2": "ABCDFGH"},
    "es-ES": {"Standard": "ABCDEFGH", "Wavenet": "BCDEFGH", "Neural2": "ABCDEFGH"},
    "es-US": {"Standard": "ABC", "Wavenet": "ABC", "Neural2": "ABC"},
    "fr-CA": {"Standard": "ABCD", "Wavenet": "ABCD", "Neural2": "ABCD"},
    "fr-FR": {"Standard": "ABCDEFG", "Wavenet": "ABCDEFG", "Neural2": "ABCDEFG"},
    "it-IT": {"Standard": "ABCDEF", "Wavenet": "ABCDEF", "Neural2": "ACF"},
    "ja-JP": {"Standard": "ABCD", "Wavenet": "ABCD", "Neural2": "BCD"},
}
_GOOGLE_FAMILIES = ("Standard", "Wavenet", "Neural2", "Chirp3-HD", "Chirp-HD", "Studio", "News",
                    "Polyglot", "Journey")
_GOOGLE_SHAPE = re.compile(
    r"^Google\.(?P<language>[a-z]{2,3}-[A-Za-z]{2,4})-(?P<family>" + "|".join(_GOOGLE_FAMILIES)
    + r")-(?P<variant>[A-Z]|[A-Z][a-z]+)$"
)

# -- the basic voices --------------------------------------------------------------------------------

# `man` and `woman` take these language values (Twilio's own spelling); `alice` takes locales.
_MAN_WOMAN_LANGUAGES = {"en": "en", "en-us": "en", "en-gb": "en-gb", "es": "es", "es-es": "es",
                        "fr": "fr", "fr-fr": "fr", "de": "de", "de-de": "de"}
_ALICE_LANGUAGES = ("da-DK", "de-DE", "en-AU", "en-CA", "en-GB", "en-IN", "en-US", "ca-ES", "es-ES",
                    "es-MX", "fi-FI", "fr-CA", "fr-FR", "it-IT", "ja-JP", "ko-KR", "nb-NO", "nl-NL",
                    "pl-PL", "pt-BR", "pt-PT", "ru-RU", "sv-SE", "zh-CN", "zh-HK", "zh-TW")


def _build() -> dict[str, Voice]:
    voices = [Voice("man", "basic", "basic", "en"), Voice("woman", "basic", "basic", "en"),
              Voice("alice", "basic", "basic", "en-US")]
    for table, suffix, tier in ((_POLLY_STANDARD, "", "standard"), (_POLLY_NEURAL, "-Neural", "neural"),
                                (_POLLY_GENERATIVE, "-Generative", "generative")):
        voices += [Voice(f"Polly.{name}{suffix}", "polly", tier, language) for name, language in table.items()]
    voices += list(_google_voices())
    return {_fold(voice.name): voice for voice in voices}


def _google_voices() -> Iterator[Voice]:
    for language, families in _GOOGLE.items():
        for family, letters in families.items():
            for letter in letters:
                yield Voice(f"Google.{language}-{family}-{letter}", "google", family.lower(), language)
        for star in _CHIRP3_HD:
            yield Voice(f"Google.{language}-Chirp3-HD-{star}", "google", "chirp3-hd", language)


def _fold(name: str) -> str:
    """The lookup form of a name: case and accents don't matter (Polly.mia-generative finds
    Polly.Mía-Generative)."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


VOICES = MappingProxyType(_build())  # folded name → Voice


def all_voices() -> list[Voice]:
    return sorted(VOICES.values(), key=lambda voice: (voice.provider, voice.name))


def find(name: str) -> Voice | None:
    """The known voice, or a Google voice of a well-formed name in a language not carried
    here; None for anything else."""
    known = VOICES.get(_fold(name))
    if known is not None:
        return known
    shape = _GOOGLE_SHAPE.match(name.strip())
    if shape and shape["language"] not in _GOOGLE:
        return Voice(name.strip(), "google", shape["family"].lower(), shape["language"])
    return None


def check_voice(name: str) -> str:
    """The voice's canonical spelling; InvalidInputError(field="voice") with close matches
    for a name Twilio would not know."""
    streamed = elevenlabs_voice(name)
    if streamed is not None:
        return streamed.name
    voice = find(name)
    if voice is not None:
        return voice.name
    raise InvalidInputError(f"{name.strip()!r} is not a Twilio voice name{_hint(name)}", field="voice")


def say_language(voice: str, requested: str | None = None) -> str | None:
    """The `language` attribute <Say> should carry for `voice`: None for Polly and Google
    voices (the voice fixes the language); for man/woman/alice the requested language in the
    spelling that voice takes, or its default when it doesn't speak it."""
    found = find(voice)
    if found is None or found.provider != "basic":
        return None
    wanted = (requested or "").strip()
    if found.name == "alice":
        by_fold = {code.casefold(): code for code in _ALICE_LANGUAGES}
        return by_fold.get(wanted.casefold(), found.language)
    return _MAN_WOMAN_LANGUAGES.get(wanted.casefold(), found.language)


def voice_language(voice: str) -> str | None:
    """The language a voice speaks (a basic voice: its default), None for an unknown voice."""
    found = find(voice)
    return found.language if found else None


def _hint(name: str) -> str:
    close = suggestions(name)
    if close:
        return "; did you mean " + ", ".join(close) + "?"
    return " (e.g. Polly.Brian, Polly.Joanna-Neural, Google.en-US-Neural2-A, alice)"


def suggestions(name: str, limit: int = MAX_SUGGESTIONS) -> list[str]:
    folded = _fold(name)
    candidates = _candidates(folded)
    matches = difflib.get_close_matches(folded, list(candidates), n=limit * 2, cutoff=0.6)
    return list(dict.fromkeys(candidates[match] for match in matches))[:limit]


def _candidates(folded: str) -> dict[str, str]:
    """Folded → canonical names to compare against; a bare name ("joanna") is compared with
    the Polly names without their prefix too."""
    names = {key: voice.name for key, voice in VOICES.items()}
    if "." not in folded:
        names.update({key.split(".", 1)[1]: voice.name for key, voice in VOICES.items()
                      if voice.provider == "polly"})
    return names



# -- ElevenLabs, streamed by ConversationRelay ---------------------------------------------------

ELEVENLABS = "ElevenLabs"
RELAY_MODELS = ("flash_v2_5", "turbo_v2_5", "flash_v2", "turbo_v2")  # what ConversationRelay streams
DEFAULT_RELAY_MODEL = "flash_v2_5"  # Twilio's default, named when settings need a model before them
SPEED_RANGE = (0.7, 1.2)
_ELEVENLABS_SHAPE = re.compile(
    r"^(?i:elevenlabs)\.(?P<id>[A-Za-z0-9]{8,40})"
    r"(?:-(?P<model>[A-Za-z0-9_]+)(?:-(?P<speed>[0-9.]+)_(?P<stability>[0-9.]+)_(?P<similarity>[0-9.]+))?)?$"
)
_DEFAULT_SETTINGS = {"speed": 1.0, "stability": 0.5, "similarity_boost": 0.75}  # ElevenLabs' own defaults


@dataclass(frozen=True)
class ElevenLabsVoice:
    """An ElevenLabs voice as ConversationRelay takes it: id, model, (speed, stability,
    similarity) — the last two optional."""

    voice_id: str
    model: str | None = None
    settings: tuple[float, float, float] | None = None

    @property
    def twilio_voice(self) -> str:
        """The `voice` attribute: `voiceId-model-speed_stability_similarity`."""
        parts = [self.voice_id]
        if self.model or self.settings:
            parts.append(self.model or DEFAULT_RELAY_MODEL)
        if self.settings:
            parts.append("_".join(_decimal(value) for value in self.settings))
        return "-".join(parts)

    @property
    def name(self) -> str:
        return f"{ELEVENLABS}.{self.twilio_voice}"

    def completed(self, model: str | None, voice_settings: Mapping[str, object] | None) -> ElevenLabsVoice:
        """What the name leaves open, from the config's `elevenlabs.model`/`voice_settings`."""
        chosen = self.model or (relay_model(model) if model else None)
        settings = self.settings or _settings_of(voice_settings)
        return ElevenLabsVoice(self.voice_id, chosen, settings)


def elevenlabs_voice(name: str) -> ElevenLabsVoice | None:
    """`ElevenLabs.<voiceId>[-model[-speed_stability_similarity]]` parsed and checked; None for
    a name of another provider; InvalidInputError for a malformed ElevenLabs one."""
    text = name.strip()
    if not _fold(text).startswith("elevenlabs"):
        return None
    shape = _ELEVENLABS_SHAPE.match(text)
    if shape is None:
        raise InvalidInputError(
            f"{text!r} is not an ElevenLabs voice: write ElevenLabs.<voiceId> (the 20-character id from "
            "ElevenLabs), optionally with -<model> and -<speed>_<stability>_<similarity>, "
            "e.g. ElevenLabs.UgBBYS2sOqTuMpoF3BR0-flash_v2_5-1.0_0.5_0.75", field="voice")
    model = relay_model(shape["model"]) if shape["model"] else None
    settings = None
    if shape["speed"] is not None:
        settings = _checked_settings(shape["speed"], shape["stability"], shape["similarity"])
    return ElevenLabsVoice(shape["id"], model, settings)


def relay_model(model: str) -> str:
    """An ElevenLabs model as Twilio names it (`eleven_flash_v2_5` → `flash_v2_5`)."""
    short = model.strip().lower().removeprefix("eleven_")
    if short not in RELAY_MODELS:
        raise InvalidInputError(
            f"ElevenLabs model {model!r} is not one ConversationRelay streams: use one of "
            + ", ".join(RELAY_MODELS), field="voice")
    return short


def _checked_settings(*texts: str) -> tuple[float, float, float]:
    try:
        speed, stability, similarity = (float(text) for text in texts)
    except ValueError:
        raise InvalidInputError(f"ElevenLabs voice settings {'_'.join(texts)!r} must be three numbers "
                                "speed_stability_similarity, e.g. 1.0_0.5_0.75", field="voice") from None
    if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise InvalidInputError(f"ElevenLabs speed {_decimal(speed)} must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}",
                                field="voice")
    for label, value in (("stability", stability), ("similarity", similarity)):
        if not 0 <= value <= 1:
            raise InvalidInputError(f"ElevenLabs {label} {_decimal(value)} must be between 0 and 1", field="voice")
    return speed, stability, similarity


def _decimal(value: float) -> str:
    """1 → 1.0, 0.75 → 0.75: as Twilio's examples write them."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _settings_of(voice_settings: Mapping[str, object] | None) -> tuple[float, float, float] | None:
    """The config's voice_settings as (speed, stability, similarity), ElevenLabs' defaults for
    what it leaves out; None when it sets none of the three."""
    given = {key: value for key, value in (voice_settings or {}).items() if key in _DEFAULT_SETTINGS}
    if not given:
        return None
    merged = {**_DEFAULT_SETTINGS, **given}
    return _checked_settings(*(str(merged[key]) for key in ("speed", "stability", "similarity_boost")))
