from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from twilio_caller import config
from twilio_caller.errors import ConfigError

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "s3cr3t-token-value-9f8e"


def test_defaults_without_a_file(home: Path) -> None:
    loaded = config.load_config(home, {})
    assert loaded.file is None
    assert loaded.get("voice.default") == "Polly.Brian"
    assert loaded.get("safety.calling_hours") == "07:00-23:00"
    assert loaded.get("safety.timezone") == "America/Chicago"
    assert loaded.get("safety.max_calls_per_contact_per_day") == 10
    assert loaded.get("safety.max_duration_seconds") == 300
    assert loaded.get("phone_region") == "US"
    assert loaded.get("webhook.port") == 8888


def test_the_file_overrides_defaults_key_by_key(home: Path, write_config) -> None:
    write_config("voice:\n  default: Polly.Joanna\nsafety:\n  max_calls_per_day: 5\n")
    loaded = config.load_config(home, {})
    assert loaded.get("voice.default") == "Polly.Joanna"
    assert loaded.get("voice.language") == "en-GB"
    assert loaded.get("safety.max_calls_per_day") == 5
    assert loaded.get("safety.calling_hours") == "07:00-23:00"


def test_config_json_is_accepted(home: Path, write_config) -> None:
    write_config('{"phone_region": "GB"}', "config.json")
    assert config.load_config(home, {}).get("phone_region") == "GB"


def test_a_yaml_syntax_error_names_the_line(home: Path, write_config) -> None:
    write_config("voice:\n  default: Polly.Brian\n  language: [en-GB\nphone_region: US\n")
    with pytest.raises(ConfigError) as caught:
        config.load_config(home, {})
    assert "config.yaml line 4" in caught.value.message
    assert "YAML syntax error" in caught.value.message


def test_a_json_syntax_error_names_the_line(home: Path, write_config) -> None:
    write_config('{\n  "phone_region": "US",\n}', "config.json")
    with pytest.raises(ConfigError, match=r"config.json line 3"):
        config.load_config(home, {})


def test_unknown_keys_are_named_with_a_suggestion(home: Path, write_config) -> None:
    write_config("voice:\n  defualt: Polly.Brian\ncolour: blue\n")
    with pytest.raises(ConfigError) as caught:
        config.load_config(home, {})
    message = caught.value.message
    assert "unknown field 'colour'" in message
    assert "unknown field 'voice.defualt' (did you mean 'default'?)" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("webhook:\n  port: eighty\n", "field 'webhook.port': 'eighty' is a string, expected an integer"),
        ("webhook:\n  port: 70000\n", "webhook.port"),
        ("safety:\n  calling_hours: 7am-11pm\n", "field 'safety.calling_hours': '7am-11pm' does not have the expected form"),
        ("tunnel:\n  provider: cloudflare\n", "'cloudflare' is not one of 'none', 'ngrok'"),
        ("voice: Polly.Brian\n", "field 'voice': 'Polly.Brian' is a string, expected an object"),
        ("- a\n- b\n", "the top level must be a mapping"),
    ],
)
def test_wrong_types_and_values_say_which_key(home: Path, write_config, text: str, expected: str) -> None:
    write_config(text)
    with pytest.raises(ConfigError) as caught:
        config.load_config(home, {})
    assert expected in caught.value.message


def test_an_empty_file_means_defaults(home: Path, write_config) -> None:
    write_config("# nothing yet\n")
    assert config.load_config(home, {}).get("voice.default") == "Polly.Brian"


def test_environment_wins_over_the_file(home: Path, write_config) -> None:
    write_config("twilio:\n  auth_token: from-file-token-1234\n  from_number: '+13125550100'\n")
    environ = {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": SID,
               "TWILIO_API_BASE_URL": "http://127.0.0.1:8099"}
    loaded = config.load_config(home, environ)
    assert loaded.get("twilio.auth_token") == TOKEN
    assert loaded.get("twilio.account_sid") == SID
    assert loaded.get("twilio.from_number") == "+13125550100"
    assert loaded.get("twilio.api_base_url") == "http://127.0.0.1:8099"
    assert loaded.from_env["twilio.auth_token"] == "TWILIO_AUTH_TOKEN"


def test_a_bad_environment_value_names_the_variable(home: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load_config(home, {"TWILIO_FROM_NUMBER": "312-555-0100"})
    assert "TWILIO_FROM_NUMBER (config key twilio.from_number)" in caught.value.message


def test_masked_values_hide_every_secret(home: Path) -> None:
    loaded = config.load_config(home, {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": SID,
                                       "NGROK_AUTHTOKEN": "ngrok-token-abcdef-123456"})
    shown = repr(loaded.masked())
    assert TOKEN not in shown and SID not in shown and "ngrok-token" not in shown
    assert loaded.masked()["twilio"]["auth_token"] == "****9f8e"
    assert loaded.get("twilio.auth_token") == TOKEN


def test_init_writes_a_commented_example_of_the_defaults(home: Path) -> None:
    path = config.write_example(home)
    text = path.read_text()
    assert "# Twilio voice for <Say>." in text
    assert "TWILIO_AUTH_TOKEN" in text
    assert os.stat(path).st_mode & 0o777 == 0o600
    written = yaml.safe_load(text)
    assert written["voice"]["default"] == "Polly.Brian"
    assert written["safety"]["calling_hours"] == "07:00-23:00"
    assert written["safety"]["timezone"] == "America/Chicago"
    assert written["safety"]["max_calls_per_contact_per_day"] == 10
    assert written["safety"]["max_duration_seconds"] == 300
    assert written["phone_region"] == "US"
    loaded = config.load_config(home, {})
    assert loaded.values == config.defaults(config.config_schema())


def test_init_does_not_overwrite_without_force(home: Path, write_config) -> None:
    write_config("phone_region: GB\n")
    with pytest.raises(ConfigError, match="already exists; use --force"):
        config.write_example(home)
    assert (home / "config.yaml").read_text() == "phone_region: GB\n"
    config.write_example(home, force=True)
    assert config.load_config(home, {}).get("phone_region") == "US"


def test_secrets_in_a_readable_file_are_noticed(home: Path, write_config) -> None:
    path = write_config(f"twilio:\n  auth_token: {TOKEN}\n")
    path.chmod(0o644)
    assert config.world_readable_secrets(config.load_config(home, {}))
    path.chmod(0o600)
    assert not config.world_readable_secrets(config.load_config(home, {}))


def test_home_defaults_to_the_users_directory() -> None:
    assert config.resolve_home({}) == Path.home() / ".twilio-caller"
    assert config.resolve_home({"TWILIO_CALLER_HOME": "/tmp/x"}) == Path("/tmp/x")


def test_an_invalid_secret_is_named_but_never_shown(home: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load_config(home, {"TWILIO_ACCOUNT_SID": "ACsecret-looking-value"})
    assert "TWILIO_ACCOUNT_SID" in caught.value.message
    assert "secret-looking" not in caught.value.message
