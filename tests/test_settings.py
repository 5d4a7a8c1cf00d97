"""Typed settings: the config parsed once into frozen sections; a changed file or variable gives
fresh settings at the next `settings_in_force()`, never the old ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from twilio_caller.config import load_config
from twilio_caller.errors import ConfigError
from twilio_caller.runtime import Runtime

TOKEN = "s3cr3t-token-value-9f8e"


def test_every_section_is_typed_with_the_schema_defaults(home: Path) -> None:
    settings = load_config(home, {}).settings
    assert settings.phone_region == "US" and settings.public_url is None
    assert settings.voice.default == "Polly.Brian" and settings.voice.language == "en-GB"
    assert settings.gather.speech_timeout == "auto" and settings.gather.hints == ()
    assert settings.safety.allowed_countries == ("US", "CA")
    assert settings.safety.zone.key == "America/Chicago"
    assert settings.webhook.port == 8888 and settings.retention.days == 90
    assert settings.twilio.account_sid is None and settings.tunnel.authtoken is None
    assert settings.identity.opening_text == "Hi, this is Yamani, Robert's AI assistant."


def test_the_file_and_the_environment_reach_the_typed_sections(home: Path, write_config) -> None:
    write_config("gather:\n  speech_timeout: 3\n  hints: [pizza]\nsafety:\n  blocked: ['+13125550001']\n"
                 "tunnel:\n  region: ' eu '\n")
    settings = load_config(home, {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_CALLER_PUBLIC_URL": "https://x.example.com"}).settings
    assert settings.gather.speech_timeout == "3" and settings.gather.hints == ("pizza",)
    assert settings.safety.blocked == ("+13125550001",)
    assert settings.tunnel.region == "eu"
    assert settings.twilio.auth_token == TOKEN and settings.public_url == "https://x.example.com"


def test_settings_are_frozen_and_keep_secrets_out_of_their_repr(home: Path) -> None:
    settings = load_config(home, {"TWILIO_AUTH_TOKEN": TOKEN, "NGROK_AUTHTOKEN": TOKEN,
                                  "ELEVENLABS_API_KEY": TOKEN}).settings
    assert TOKEN not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.voice.default = "Polly.Joanna"  # type: ignore[misc]


def test_settings_in_force_follow_an_edit_and_a_variable(home: Path, write_config, clock) -> None:
    write_config("safety:\n  max_calls_per_day: 5\n")
    environ: dict[str, str] = {}
    rt = Runtime(home, clock=clock, environ=environ)
    first = rt.settings_in_force()
    assert first.safety.max_calls_per_day == 5 and rt.settings_in_force() is first  # unchanged: the same
    write_config("safety:\n  max_calls_per_day: 7\n")
    assert rt.settings_in_force().safety.max_calls_per_day == 7
    environ["TWILIO_FROM_NUMBER"] = "+13125550100"
    assert rt.settings_in_force().twilio.from_number == "+13125550100"
    assert rt.settings is rt.settings_in_force()


def test_a_broken_edit_raises_instead_of_keeping_the_old_settings(home: Path, write_config, clock) -> None:
    write_config("safety:\n  max_calls_per_day: 5\n")
    rt = Runtime(home, clock=clock, environ={})
    assert rt.settings_in_force().safety.max_calls_per_day == 5
    write_config("safety:\n  max_calls_per_day: lots\n")
    with pytest.raises(ConfigError):
        rt.settings_in_force()

