"""The settings a running server cannot change under itself — its listeners, its tunnel, the
Twilio account and endpoint it dials through, ElevenLabs, its mode — fingerprinted key by key.
The server writes the fingerprint (and the values, secrets masked) into run/server.json; a
client compares it with what its own environment and config file say before it places a call.
Everything else (the safety rules, voices, timings) the server rereads at each call."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from twilio_caller.config import Config, mask, secret_keys

FIXED_PREFIXES = ("webhook.", "tunnel.", "elevenlabs.")
FIXED_KEYS = ("public_url", "server.idle_exit_seconds", "twilio.api_base_url", "twilio.from_number",
              "twilio.account_sid", "twilio.auth_token")


def fixed_settings(config: Config, mode: str) -> dict[str, Any]:
    """The fixed settings by dotted key, with the mode under `mode`."""
    values: dict[str, Any] = {"mode": mode}
    values.update((key, value) for key, value in config.leaves().items()
                  if key in FIXED_KEYS or key.startswith(FIXED_PREFIXES))
    return values


def fingerprint(settings: Mapping[str, Any]) -> dict[str, str]:
    """A short digest per setting: enough to tell a change, never enough to recover a secret."""
    return {key: hashlib.sha256(f"{key}={value!r}".encode()).hexdigest()[:16]
            for key, value in settings.items()}


def masked(settings: Mapping[str, Any]) -> dict[str, Any]:
    secrets = set(secret_keys())
    return {key: mask(str(value)) if key in secrets and value else value for key, value in settings.items()}


def changed(running: Mapping[str, str] | None, wanted: Mapping[str, str]) -> list[str]:
    """The keys whose fingerprint differs (every key when the server wrote none)."""
    if not isinstance(running, Mapping):
        return sorted(wanted)
    return sorted(key for key in set(running) | set(wanted) if running.get(key) != wanted.get(key))

