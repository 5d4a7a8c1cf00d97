"""A relay call taken back after a restart: the Calls-API update is a new <Connect>
<ConversationRelay> to this server whose signed socket URL says where the call goes on, and
the socket starts there (the line the agent queued, not the opening again)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from test_relay import AUTH, OPENING, Line_, setup_message, spoken
from test_twilio_transport import BASE, SPEECH, transport
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import HangUp, Speak
from twilio_caller.transport.twilio.relay_socket import Limits

SOCKET = "wss://calls.example.com/relay/call_0123456789abcdef/tok-EN_42"
ACTION = "https://calls.example.com/twilio/call_0123456789abcdef/tok-EN_42/handoff"


@dataclass(frozen=True)
class RelayCall:
    call_id: str = "call_0123456789abcdef"
    token: str = "tok-EN_42"
    speech = SPEECH
    engine: str = "relay"


@pytest.fixture
def open_line(runtime: Runtime) -> Iterator[Line_]:
    built = Line_(runtime, keep_open=True, limits=Limits(setup_seconds=0.2, silence_seconds=5))
    with built.client:
        yield built


def connected(fields: dict[str, object]) -> tuple[str | None, str | None]:
    relay = ET.fromstring(str(fields["twiml"])).find("Connect/ConversationRelay")
    connect = ET.fromstring(str(fields["twiml"])).find("Connect")
    assert relay is not None and connect is not None
    return relay.get("url"), connect.get("action")


def test_a_taken_back_relay_call_is_connected_to_a_new_socket_that_says_where_it_goes_on() -> None:
    carrier, calls = transport()
    assert BASE.startswith("https://")
    carrier.reattach("CA1", RelayCall(), resume=3)
    carrier.reattach("CA1", RelayCall(), reask=2)
    carrier.reattach("CA1", RelayCall(), goodbye="Sorry, I have to go.")
    carrier.reattach("CA1", RelayCall())
    resumed, reasked, goodbye, ringing = (fields for _, fields in calls.requests)
    assert connected(resumed) == (SOCKET + "?resume=3", ACTION)
    assert connected(reasked) == (SOCKET + "?reask=2", ACTION)
    assert resumed["status_callback"] == ACTION.removesuffix("handoff") + "status"
    assert [verb.tag for verb in ET.fromstring(str(goodbye["twiml"]))] == ["Say", "Hangup"]
    assert ringing["url"] == ACTION.removesuffix("handoff") + "voice"  # not answered: its voice request connects


def test_the_socket_of_a_taken_back_call_resumes_with_the_queued_line(open_line: Line_) -> None:
    line = open_line
    line.session.hold_number = 3
    line.client.portal.call(line.session.submit, Speak("As I was saying, Friday works.", expect_reply=False))
    validator = RequestValidator(AUTH)
    path = line.path + "?resume=3"
    with line.client.websocket_connect(path, headers={
            "X-Twilio-Signature": validator.compute_signature("wss://calls.example.com" + path, {})}) as ws:
        ws.send_text(setup_message())
        said, _ = spoken(ws)
        line.client.portal.call(line.session.submit, HangUp("Bye now."))
        assert spoken(ws)[0] == "Bye now." and ws.receive_json()["type"] == "end"
    assert said == "As I was saying, Friday works."
    assert ("assistant", OPENING) not in line.transcript()


def test_a_resume_added_to_a_signed_socket_url_is_refused(open_line: Line_) -> None:
    with pytest.raises(WebSocketDisconnect), open_line.connect(open_line.path + "?resume=1") as ws:
        ws.receive_json()  # the signature was made without the query
    assert open_line.transcript() == []


def test_a_socket_on_a_server_that_never_saw_the_voice_request_starts_as_its_url_says(open_line: Line_) -> None:
    """Several instances: the voice request answered by one, the socket on another. What the
    socket starts with is in its signed URL, not in the answering process's memory: who
    answered is recorded, and the welcomeGreeting Twilio spoke is not said again."""
    line = open_line
    path = line.path + "?answeredBy=human&greeted=1"
    signature = RequestValidator(AUTH).compute_signature("wss://calls.example.com" + path, {})
    with line.client.websocket_connect(path, headers={"X-Twilio-Signature": signature}) as ws:
        ws.send_text(setup_message())
        said, _ = spoken(ws)
        line.client.portal.call(line.session.submit, HangUp(None))
    assert said == line.session.message  # the opening was the greeting: spoken by Twilio already
    assert ("assistant", OPENING) in line.transcript()  # … and still on record
    record = line.runtime.store.calls.get(line.session.call_id)
    assert record["answered_by"] == "human"


def test_after_its_socket_dropped_the_calls_next_socket_is_admitted_on_the_same_server(open_line: Line_) -> None:
    """A socket dropped on a live call: the handoff's new `<Connect>` (`?resume=N`) points at
    the same public URL, so with one server the call's next socket comes back here. One socket
    at a time per call — but the dropped one no longer counts: the next is admitted and goes on
    with the line the agent queued."""
    line = open_line
    with line.connect() as ws:
        ws.send_text(setup_message())
        spoken(ws)  # the opening: the socket is up, then Twilio loses it
    line.session.hold_number = 3
    line.client.portal.call(line.session.submit, Speak("Sorry, we were cut off.", expect_reply=False))
    path = line.path + "?resume=3"
    signature = RequestValidator(AUTH).compute_signature("wss://calls.example.com" + path, {})
    with line.client.websocket_connect(path, headers={"X-Twilio-Signature": signature}) as ws:
        ws.send_text(setup_message())
        said, _ = spoken(ws)
        line.client.portal.call(line.session.submit, HangUp("Bye now."))
        assert spoken(ws)[0] == "Bye now." and ws.receive_json()["type"] == "end"
    assert said == "Sorry, we were cut off."

