"""Every test runs in its own home directory with a clean environment: nothing reads or
writes the real ~/.twilio-caller, and no Twilio credential leaks in from the shell."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from elevenlabs_standin import StandIn

from twilio_caller.clock import ManualClock
from twilio_caller.invocation import SIMULATE_ENV
from twilio_caller.runtime import Runtime
from twilio_caller.simulator.runner import ThreadedServer

ISOLATED_VARIABLES = (
    "TWILIO_CALLER_HOME", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER",
    "TWILIO_API_BASE_URL", "TWILIO_CALLER_PUBLIC_URL", "NGROK_AUTHTOKEN", "ELEVENLABS_API_KEY", "ELEVENLABS_API_BASE_URL", "TWILIO_CALLER_SIMULATE",
    "TWILIO_REGION", "TWILIO_EDGE", "TWILIO_CALLER_DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
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


TEST_CONFIG = """\
safety:
  calling_hours: "00:00-24:00"
  callee_hours: null
  max_calls_per_day: 100000
  max_concurrent_calls: 1000
  max_calls_per_contact_per_day: 100
  min_seconds_between_calls_to_contact: 0
webhook:
  port: 0
conversation:
  hold_budget_seconds: {hold}
  unsteered_limit_seconds: {unsteered}
  acknowledge_after_seconds: 0
"""

CONTACTS = {f"Contact{n}": f"+1312555{n:04d}" for n in range(1, 26)}


class LiveServer:
    """A server in simulate mode in a thread of the test process, and a client runtime."""

    def __init__(self, home: Path, *, time_scale: float, hold: float, unsteered: float,
                 extra_config: str = "", clock: Any = None, acknowledge: float = 0) -> None:
        from twilio_caller.server.runner import ServerRunner, ServerThread

        home.mkdir(parents=True, exist_ok=True)
        (home / "config.yaml").write_text(TEST_CONFIG.format(hold=hold, unsteered=unsteered).replace(
            "acknowledge_after_seconds: 0\n", f"acknowledge_after_seconds: {acknowledge}\n") + extra_config)
        self.runtime = Runtime(home, environ={SIMULATE_ENV: "1"}, clock=clock)  # tools run simulated
        for name, number in CONTACTS.items():
            self.runtime.contacts.add(name, number, "America/Chicago")
        self.runner = ServerRunner(Runtime(home, environ={}, clock=clock), simulate=True, idle_exit=False,
                                   time_scale=time_scale)
        self.thread = ServerThread(self.runner)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.stop()
        self.runtime.close()

    @property
    def simulator(self):
        return self.runner.simulator

    def script(self, name: str, **script) -> None:
        self.script_number(CONTACTS[name], **script)

    def script_number(self, number: str, **script) -> None:
        from twilio_caller.simulator import CalleeScript

        self.simulator.set_callee(number, CalleeScript.from_dict(script))

    def tool(self, name: str, /, **arguments):
        from twilio_caller.manifest import invoke

        return invoke(name, arguments, self.runtime)


@pytest.fixture
def live_server(home: Path) -> Iterator[LiveServer]:
    with LiveServer(home, time_scale=50, hold=0.3, unsteered=1.5) as server:
        yield server


# -- PostgreSQL (issue 18) ---------------------------------------------------------------

_postgres_missing: list[str] = []


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a database of this test session's own on the real PostgreSQL."""
    import postgres_support as pg

    try:
        import psycopg

        admin = psycopg.connect(pg.admin_url(), autocommit=True, connect_timeout=5)
    except Exception as exc:  # no driver, no server, refused: the tests that need it cannot run
        reason = f"PostgreSQL tests skipped ({' '.join(str(exc).split())[:160]}): {pg.HOW_TO_ENABLE}"
        if pg.required():
            pytest.fail(f"{pg.REQUIRE_ENV} is set but {reason}", pytrace=False)
        _postgres_missing.append(reason)
        pytest.skip(reason)
    name = pg.new_name("tc_test")
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield pg.database_url(name)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """A fresh, empty schema of the session's database for one test (search_path set in the URL)."""
    import postgres_support as pg
    import psycopg

    schema = pg.new_name("t")
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
        try:
            yield pg.with_schema(postgres_database, schema)
        finally:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _postgres_missing:
        terminalreporter.write_line(_postgres_missing[0])


@pytest.fixture
def eleven() -> Iterator[StandIn]:
    """A stand-in of the ElevenLabs API on loopback."""
    stand_in = StandIn()
    with ThreadedServer(stand_in.app) as server:
        stand_in.base_url = server.base_url
        yield stand_in


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop of the test's own, for code driven with `run_until_complete`."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def transport() -> Any:
    """The conversation tests' fake transport (test_conversation_core.FakeTransport): each
    command rendered as a numbered token and kept."""
    from test_conversation_core import FakeTransport

    return FakeTransport()
