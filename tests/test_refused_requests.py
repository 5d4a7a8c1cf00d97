"""A call whose webhook request was refused: Twilio ends it with its application error (11200),
and its status callback may be refused as well. The server looks the call up at Twilio
(server/refusals.py) and closes it, so the tools return with the call's end instead of waiting
out their wait; a request without the call's token never makes the server ask Twilio."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from conftest import LiveServer
from polling import eventually
from twilio_caller.server.refusals import RefusalWatch, WatchRefusals
from twilio_caller.sessions import CallSession, Registry
from twilio_caller.transport.port import Speech
from twilio_caller.transport.twilio.routes import ROUTES
from test_webhook import Hook, keep_open

APPLICATION_ERROR = 11200
TOKEN = "t0ken"
SPEECH = Speech("Polly.Brian", None, "en-US", "auto", 5, "phone_call", ())


def test_a_call_twilio_ended_after_refused_requests_is_closed_and_the_tool_returns(live_server: LiveServer) -> None:
    """Twilio signs with a token this server does not have (the primary changed in the
    Console): every request, the status callbacks too, is refused with 403."""
    live_server.simulator.chaos.signing_token = "a-primary-token-this-server-does-not-hold"
    live_server.script("Contact1", replies=[{"say": "Sure"}])
    result = live_server.tool("call", to="Contact1", message="I'll be late", interactive=True)
    record = live_server.simulator.call(result["twilio_sid"])
    assert record.is_over and APPLICATION_ERROR in record.error_codes
    assert "HTTP retrieval failure: status 403" in [error.message for error in record.errors]  # the voice request
    assert {request.status_code for request in record.requests if request.purpose != "voice"} == {403}
    assert result["status"] == "completed" and result["end_reason"] == "webhook-refused"
    assert result["reply"] is None and result["ended"] is True
    assert 1 <= record.fetches <= 2  # looked up until Twilio said it was over, then no more
    stored = live_server.tool("call_status", call_id=result["call_id"])
    assert (stored["status"], stored["end_reason"]) == ("completed", "webhook-refused")


def test_a_refused_request_on_a_call_still_live_at_twilio_closes_nothing(steady_server: LiveServer) -> None:
    hook = Hook(steady_server, keep_open(steady_server), None)
    record = steady_server.simulator.call(hook.placed["twilio_sid"])
    assert hook.post(hook.path("status"), hook.form(CallStatus="completed"), signature="forged").status_code == 403
    assert eventually(lambda: record.fetches >= 1, 20)
    status = steady_server.tool("call_status", call_id=hook.placed["call_id"])
    assert status["status"] == "in-progress" and status["ended"] is False and status["end_reason"] is None
    steady_server.tool("hangup", call_id=hook.placed["call_id"])


@pytest.fixture
def steady_server(home):
    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=600)
    with server:
        yield server


# -- the watch: which refusals are looked up, how often, and when it stops ------------------


class Lookups:
    """Twilio's side of the watch: each lookup recorded; the call is over at lookup `over_at`."""

    def __init__(self, over_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.over_at = over_at

    async def __call__(self, call_id: str) -> bool:
        self.calls.append(call_id)
        return self.over_at is not None and len(self.calls) >= self.over_at


def session(call_id: str = "call-1", kind: type[CallSession] = CallSession) -> Any:
    return kind(call_id=call_id, token=TOKEN, to_number="+13125550101", to_name="Bob", message="Hi",
                       interactive=False, keep_open=False, closing="Bye", speech=SPEECH,
                       reprompts_left=0)


def watched(lookups: Lookups, *sessions: CallSession, delays: tuple[float, ...] = (0, 0, 0)) -> tuple[RefusalWatch, list[asyncio.Task[None]]]:
    registry = Registry()
    for live in sessions:
        registry.add(live)
    tasks: list[asyncio.Task[None]] = []

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        tasks.append(asyncio.ensure_future(work))

    return RefusalWatch(registry, lookups, spawn, delays), tasks


async def settled(tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*tasks)


def test_a_live_call_is_looked_up_on_the_schedule_until_twilio_says_it_is_over() -> None:
    async def go() -> None:
        lookups = Lookups(over_at=2)
        watch, tasks = watched(lookups, session())
        watch.refused("call-1", TOKEN)
        await settled(tasks)
        assert lookups.calls == ["call-1", "call-1"]
        always_live = Lookups()
        watch, tasks = watched(always_live, session(), delays=(0, 0, 0, 0, 0))
        watch.refused("call-1", TOKEN)
        await settled(tasks)
        assert len(always_live.calls) == 5  # the schedule's length, then the watch gives up

    asyncio.run(go())


class Timed(CallSession):
    """A call whose waits are recorded and end at once (no news comes)."""

    waits: list[float]

    async def wait_until(self, ready, timeout: float) -> bool:  # type: ignore[no-untyped-def]
        self.waits.append(timeout)
        return ready()


def test_the_lookups_come_after_1_2_4_8_and_16_seconds() -> None:
    async def go() -> None:
        timed = session(kind=Timed)
        timed.waits = []
        lookups = Lookups()
        registry = Registry()
        registry.add(timed)
        tasks: list[asyncio.Task[None]] = []
        RefusalWatch(registry, lookups, lambda work: tasks.append(asyncio.ensure_future(work))).refused("call-1", TOKEN)
        await settled(tasks)
        assert timed.waits == [1, 2, 4, 8, 16] and len(lookups.calls) == 5

    asyncio.run(go())


def test_refusals_while_a_call_is_watched_start_no_second_watch() -> None:
    async def go() -> None:
        lookups = Lookups()
        watch, tasks = watched(lookups, session())
        for _ in range(10):
            watch.refused("call-1", TOKEN)
        await settled(tasks)
        assert len(tasks) == 1 and len(lookups.calls) == 3
        watch.refused("call-1", TOKEN)  # after the watch gave up, a new refusal watches again
        await settled(tasks)
        assert len(tasks) == 2 and len(lookups.calls) == 6

    asyncio.run(go())


@pytest.mark.parametrize(("call_id", "token"), [
    ("call-2", TOKEN),  # a call this server does not run
    ("call-1", "not-the-token"),  # not Twilio's request
    ("call-1", ""),
    ("call-1", "t0ke"),
])
def test_a_refusal_without_a_live_call_and_its_token_is_never_looked_up(call_id: str, token: str) -> None:
    async def go() -> None:
        lookups = Lookups()
        watch, tasks = watched(lookups, session())
        watch.refused(call_id, token)
        await settled(tasks)
        assert tasks == [] and lookups.calls == []

    asyncio.run(go())


def test_an_ended_call_is_not_looked_up_and_a_call_that_ends_while_watched_stops_the_watch() -> None:
    async def go() -> None:
        ended = session()
        await ended.end("completed")
        lookups = Lookups()
        watch, tasks = watched(lookups, ended)
        watch.refused("call-1", TOKEN)
        assert tasks == []
        live = session()
        watch, tasks = watched(lookups, live, delays=(30, 30))
        watch.refused("call-1", TOKEN)
        await asyncio.sleep(0)  # the watch is waiting out its first delay
        await live.end("completed")  # the status callback got through after all
        await asyncio.wait_for(settled(tasks), 5)
        assert lookups.calls == []

    asyncio.run(go())


# -- the middleware: which answers count as refusals ---------------------------------------


class Refusals:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def refused(self, call_id: str, token: str) -> None:
        self.seen.append((call_id, token))


def answering(status: int | None) -> Starlette:
    """The webhook's route table, every call route answering `status` (None: raising)."""
    class Endpoints:
        def __getattr__(self, name: str):
            async def endpoint(request: Request) -> Response:
                if status is None:
                    raise RuntimeError("a bug in the handler")
                return Response(status_code=status)
            return endpoint

    refusals = Refusals()
    app = Starlette(routes=ROUTES, middleware=[Middleware(WatchRefusals, watch=refusals, routes=ROUTES)])
    app.state.endpoints = Endpoints()
    app.state.refusals = refusals
    return app


@pytest.mark.parametrize("route", ["voice", "gather", "status", "amd", "handoff"])
@pytest.mark.parametrize(("status", "refused"), [(200, False), (204, False), (399, False), (400, True),
                                                 (403, True), (404, True), (413, True), (500, True), (None, True)])
def test_an_error_answer_on_a_call_route_is_a_refusal(route: str, status: int | None, refused: bool) -> None:
    app = answering(status)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.post(f"/twilio/CALL-9/secret/{route}", data={"CallSid": "CA1"})
    assert app.state.refusals.seen == ([("CALL-9", "secret")] if refused else [])


def test_answers_off_the_call_routes_are_not_refusals() -> None:
    app = answering(403)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/twilio/nowhere").status_code == 404
        assert client.get("/twilio/CALL-9/secret/unknown-route").status_code == 404
        assert client.get("/twilio/CALL-9/secret/status").status_code == 405  # the route, another method
    assert app.state.refusals.seen == [("CALL-9", "secret")]
    with TestClient(app) as client:  # the middleware itself never fails on a route without a call
        assert client.post("/twilio/ping").status_code == 405
    assert app.state.refusals.seen == [("CALL-9", "secret")]


def test_the_webhook_app_with_its_watch_answers_a_request_for_no_call_404(runtime) -> None:
    """The app the server serves, built in-process (build_webhook_app, the watch's middleware
    in it): a request naming no call is 404 — at once, where a server whose app cannot be
    built leaves every end-to-end test waiting for a call that never moves."""
    from twilio_caller.dialer import Dialer
    from twilio_caller.server.webhook import build_webhook_app
    from twilio_caller.transport.twilio.calls import Credentials, Telephony

    telephony = Telephony(Credentials("AC" + "0" * 32, "token", "+13125550100", "http://127.0.0.1:9"),
                          runtime.store.ledger)
    dialer = Dialer(runtime, telephony, "http://127.0.0.1:9")
    with TestClient(build_webhook_app(dialer, "http://127.0.0.1:9")) as client:
        answer = client.post("/twilio/call_nobody/n0-token/status", data={"CallSid": "CA1", "CallStatus": "completed"})
    assert answer.status_code == 404

