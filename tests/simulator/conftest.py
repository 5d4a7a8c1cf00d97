"""Fixtures for the simulator's tests: a simulator served on loopback in a thread, the real
twilio SDK pointed at it, and a TwiML app (also on loopback) that validates signatures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .twiml_app import TwimlApp
from twilio_caller.simulator import Simulator, SimulatorThread, ThreadedServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "simulator-test-token-0123456789ab"
FROM = "+13125550199"
TO = "+13125550101"
FAST = 2000.0  # a two-minute call takes 60 ms


def sdk_client(base_url: str, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> Client:
    # A non-empty environment keeps TWILIO_REGION/TWILIO_EDGE from the real one out.
    client = Client(account_sid, auth_token, environment={"TWILIO_CALLER_TESTS": "1"},
                    http_client=TwilioHttpClient(timeout=30))
    client.api.base_url = base_url
    return client


@dataclass
class Rig:
    simulator: Simulator
    server: SimulatorThread
    client: Client
    app: TwimlApp

    def call(self, path: str = "/voice", *, to: str = TO, **kwargs: object) -> str:
        """Place a call whose Url is the test app's `path`; returns its SID."""
        url = self.app.url(path) if path else None
        created = self.client.calls.create(to=to, from_=FROM, url=url, **kwargs)
        return str(created.sid)

    def finish(self, sid: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
        record = self.simulator.wait_for_call(sid, timeout)
        assert all(item.signature_valid for item in self.app.received), "an unsigned request reached the app"
        return record


@pytest.fixture
def twiml_app() -> Iterator[TwimlApp]:
    app = TwimlApp(AUTH_TOKEN)
    with ThreadedServer(app.app) as server:
        app.base_url = server.base_url
        try:
            yield app
        finally:
            app.release_held()


def make_simulator(**overrides: object) -> Simulator:
    settings: dict[str, object] = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "time_scale": FAST}
    settings.update(overrides)
    return Simulator(**settings)  # type: ignore[arg-type]


@pytest.fixture
def simulator() -> Simulator:
    return make_simulator()


@pytest.fixture
def rig(simulator: Simulator, twiml_app: TwimlApp) -> Iterator[Rig]:
    with SimulatorThread(simulator) as server:
        yield Rig(simulator, server, sdk_client(server.base_url), twiml_app)
