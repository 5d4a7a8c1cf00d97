"""Every test runs in its own home directory with a clean environment: nothing reads or
writes the real ~/.twilio-caller, and no Twilio credential leaks in from the shell."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from twilio_caller.clock import ManualClock
from twilio_caller.runtime import Runtime

ISOLATED_VARIABLES = (
    "TWILIO_CALLER_HOME", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER",
    "TWILIO_API_BASE_URL", "TWILIO_CALLER_PUBLIC_URL", "NGROK_AUTHTOKEN", "ELEVENLABS_API_KEY",
    "TWILIO_REGION", "TWILIO_EDGE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ISOLATED_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("TWILIO_CALLER_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return home


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc))


@pytest.fixture
def runtime(home: Path, clock: ManualClock) -> Iterator[Runtime]:
    rt = Runtime(home, clock=clock)
    yield rt
    rt.close()


@pytest.fixture
def write_config(home: Path):
    def write(text: str, name: str = "config.yaml") -> Path:
        home.mkdir(parents=True, exist_ok=True)
        path = home / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
