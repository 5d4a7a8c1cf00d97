"""The known Twilio <Say> voices: canonical spelling, suggestions for typos, and the language
<Say> carries for each kind of voice."""

from __future__ import annotations

import pytest

from twilio_caller import voices
from twilio_caller.errors import InvalidInputError


@pytest.mark.parametrize("name, canonical", [
    ("Polly.Brian", "Polly.Brian"),
    ("polly.brian", "Polly.Brian"),
    ("  Polly.Joanna-Neural ", "Polly.Joanna-Neural"),
    ("POLLY.MATTHEW-GENERATIVE", "Polly.Matthew-Generative"),
    ("Polly.Mia-Generative", "Polly.Mía-Generative"),  # Twilio spells it with the accent
    ("Polly.Rémi-Generative", "Polly.Rémi-Generative"),
    ("Google.en-US-Neural2-A", "Google.en-US-Neural2-A"),
    ("google.en-gb-wavenet-b", "Google.en-GB-Wavenet-B"),
    ("Google.en-US-Chirp3-HD-Aoede", "Google.en-US-Chirp3-HD-Aoede"),
    ("alice", "alice"),
    ("Man", "man"),
])
def test_known_voices_come_back_in_twilios_spelling(name: str, canonical: str) -> None:
    assert voices.check_voice(name) == canonical


@pytest.mark.parametrize("typo, expected", [
    ("Polly.Brain", "Polly.Brian"),
    ("Polly.Joana-Neural", "Polly.Joanna-Neural"),
    ("Polly.Matthew-Nueral", "Polly.Matthew-Neural"),
    ("Google.en-US-Nueral2-A", "Google.en-US-Neural2-A"),
    ("joanna", "Polly.Joanna"),
])
def test_a_typo_is_refused_with_close_suggestions(typo: str, expected: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        voices.check_voice(typo)
    assert raised.value.field == "voice"
    assert expected in raised.value.message
    assert raised.value.to_dict()["error"]["field"] == "voice"


def test_a_name_far_from_any_voice_gets_examples() -> None:
    with pytest.raises(InvalidInputError, match="e.g. Polly.Brian"):
        voices.check_voice("Robot-3000")


def test_variants_twilio_does_not_offer_are_refused() -> None:
    for name in ("Polly.Geraint-Neural", "Polly.Hans-Generative", "Google.en-US-Neural2-B", "Polly."):
        with pytest.raises(InvalidInputError):
            voices.check_voice(name)


def test_google_voices_in_languages_not_carried_here_are_accepted_by_their_shape() -> None:
    assert voices.check_voice("Google.nl-NL-Wavenet-B") == "Google.nl-NL-Wavenet-B"
    assert voices.voice_language("Google.nl-NL-Wavenet-B") == "nl-NL"
    with pytest.raises(InvalidInputError):
        voices.check_voice("Google.nl-NL-Robotic-B")


@pytest.mark.parametrize("name, language", [
    ("Polly.Brian", "en-GB"), ("Polly.Joanna-Neural", "en-US"), ("Polly.Hannah-Neural", "de-AT"),
    ("Polly.Lupe-Generative", "es-US"), ("Google.fr-CA-Neural2-B", "fr-CA"), ("alice", "en-US"),
])
def test_every_voice_knows_its_language(name: str, language: str) -> None:
    assert voices.voice_language(name) == language


def test_say_carries_no_language_for_voices_that_fix_it() -> None:
    assert voices.say_language("Polly.Brian") is None
    assert voices.say_language("Polly.Brian", "en-US") is None
    assert voices.say_language("Google.en-US-Neural2-A", "en-US") is None
    assert voices.say_language("no-such-voice", "en-US") is None


def test_basic_voices_take_the_language_in_their_own_spelling_or_their_default() -> None:
    assert voices.say_language("alice", "en-gb") == "en-GB"
    assert voices.say_language("alice", "sw-KE") == "en-US"
    assert voices.say_language("alice") == "en-US"
    assert voices.say_language("man", "en-GB") == "en-gb"
    assert voices.say_language("woman", "fr-FR") == "fr"
    assert voices.say_language("woman", "it-IT") == "en"


def test_the_list_is_consistent() -> None:
    listed = voices.all_voices()
    assert len(listed) == len({voice.name for voice in listed})
    assert {voice.provider for voice in listed} == {"basic", "polly", "google"}
    assert {voice.tier for voice in listed if voice.provider == "polly"} == {"standard", "neural", "generative"}
    for voice in listed:
        assert voices.check_voice(voice.name) == voice.name
        if voice.provider == "google":
            assert voice.name.startswith(f"Google.{voice.language}-")
