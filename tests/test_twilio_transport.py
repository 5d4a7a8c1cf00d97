"""The Twilio transport's two translations, without a server: Twilio's webhook parameters →
the port's events, the port's commands → TwiML pointing at the named routes, and the URLs
built from the route table (the paths are a contract)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest
from starlette.routing import NoMatchFound

from twilio_caller.call_status import CallStatus
from twilio_caller.transport.port import (
    Answered, Ask, Command, Digits, EndCall, Heard, Hold, Line, Placed, Ready, Say, SendDigits, Silence, Speech,
    StatusChanged,
)
from twilio_caller.transport.twilio import twiml
from twilio_caller.transport.twilio.requests import MAX_SPEECH_CHARS, parse_event
from twilio_caller.transport.twilio.routes import WebhookUrls
from twilio_caller.transport.twilio.transport import TwilioTransport

BASE = "https://calls.example.com/"
SPEECH = Speech("Polly.Joanna", None, "en-US", "auto", 5, "phone_call", ())


@dataclass(frozen=True)
class Call:
    call_id: str = "call_0123456789abcdef"
    token: str = "tok-EN_42"
    speech: Speech = SPEECH
    engine: str = "gather"


CALL = Call()
PREFIX = f"https://calls.example.com/twilio/{CALL.call_id}/{CALL.token}"


def test_urls_follow_the_contracted_layout() -> None:
    urls = WebhookUrls(BASE)
    assert urls.base_url == "https://calls.example.com"
    assert urls.ping() == "https://calls.example.com/twilio/ping"
    assert urls.url(CALL, "voice") == f"{PREFIX}/voice"
    assert urls.url(CALL, "status") == f"{PREFIX}/status"
    assert urls.numbered(CALL, "gather", 3) == f"{PREFIX}/gather?n=3"
    assert urls.numbered(CALL, "hold", 12) == f"{PREFIX}/hold?n=12"
    with pytest.raises(NoMatchFound):
        urls.url(CALL, "dial")


@pytest.mark.parametrize(("raw", "who"), [
    ("human", "human"), ("machine_end_beep", "machine"), ("machine_start", "machine"), ("fax", "fax"),
    ("", None),
])
def test_the_voice_request_is_an_answer_by_whom(raw: str, who: str | None) -> None:
    assert parse_event(CALL, "voice", {}, {"AnsweredBy": raw}) == Answered(who)
    assert parse_event(CALL, "voice", {"AnsweredBy": raw}, {}) == Answered(who)  # a GET carries it in the query


def test_a_gather_result_is_heard_or_silence() -> None:
    form = {"SpeechResult": "Yes, Friday works", "Confidence": "0.87"}
    assert parse_event(CALL, "gather", {"n": "2"}, form) == Heard(
        2, "Yes, Friday works", 0.87, f"{CALL.call_id}:gather:2")
    assert parse_event(CALL, "gather", {"n": "2"}, {"SpeechResult": ""}) == Silence(2)
    assert parse_event(CALL, "gather", {"n": "2"}, {}) == Silence(2)
    long = parse_event(CALL, "gather", {"n": "1"}, {"SpeechResult": "a" * 5000, "Confidence": "7"})
    assert isinstance(long, Heard) and len(long.text) == MAX_SPEECH_CHARS and long.confidence is None
    assert parse_event(CALL, "gather", {"n": "x"}, form) is None
    assert parse_event(CALL, "gather", {}, form) is None


def test_keys_gathered_in_answer_are_the_turns_digits_and_anything_else_is_silence() -> None:
    key = f"{CALL.call_id}:gather:3"
    assert parse_event(CALL, "gather", {"n": "3"}, {"Digits": "42", "FinishedOnKey": "#"}) == Digits(3, "42", key)
    assert parse_event(CALL, "gather", {"n": "3"}, {"Digits": "4<2"}) == Silence(3)  # not keys: nothing heard
    assert parse_event(CALL, "gather", {"n": "3"}, {"Digits": "1" * 65}) == Silence(3)
    assert parse_event(CALL, "gather", {"n": "3"}, {"Digits": "1" * 64}) == Digits(3, "1" * 64, key)  # the limit itself
    every_key = "0123456789*#ABCD"  # all sixteen keys in one answer are still keys
    assert parse_event(CALL, "gather", {"n": "3"}, {"Digits": every_key}) == Digits(3, every_key, key)
    spoken = parse_event(CALL, "gather", {"n": "3"}, {"SpeechResult": "Forty two", "Digits": "42"})
    assert isinstance(spoken, Heard)  # speech wins when both came


def test_a_hold_request_is_ready_and_a_status_is_a_call_status() -> None:
    assert parse_event(CALL, "hold", {"n": "4"}, {}) == Ready(4)
    assert parse_event(CALL, "hold", {"n": "-1"}, {}) is None
    said = parse_event(CALL, "hold", {"n": "4"}, {"SpeechResult": "Oh, and Friday", "Confidence": "0.8"})
    assert said == Ready(4, "Oh, and Friday", 0.8)  # words said while held
    assert parse_event(CALL, "hold", {"n": "4"}, {"SpeechResult": "", "Confidence": "0.8"}) == Ready(4)
    form = {"CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "42", "AnsweredBy": "human"}
    assert parse_event(CALL, "status", {}, form) == StatusChanged(CallStatus.COMPLETED, 3, "human", 42, form)
    bare = parse_event(CALL, "status", {}, {"CallStatus": "ringing", "CallDuration": "soon"})
    assert bare == StatusChanged(CallStatus.RINGING, None, None, None, {"CallStatus": "ringing", "CallDuration": "soon"})
    for unknown in ("", "pending", "answered", "COMPLETED"):
        assert parse_event(CALL, "status", {}, {"CallStatus": unknown}) is None


def render(command: Command) -> ET.Element:
    urls = WebhookUrls(BASE)
    return ET.fromstring(twiml.render(command, SPEECH, lambda route, n: urls.numbered(CALL, route, n)))


def test_each_command_renders_as_twiml_pointing_at_its_route() -> None:
    said = render(Say(("Hello", Line("Hi", "https://calls.example.com/audio/a/b.mp3")), resume=2))
    assert [e.tag for e in said] == ["Say", "Play", "Redirect"]
    assert said.find("Redirect").text == f"{PREFIX}/hold?n=2"
    asked = render(Ask(("Does Friday work?",), turn=5)).find("Gather")
    assert asked.get("action") == f"{PREFIX}/gather?n=5" and asked.find("Say").text == "Does Friday work?"
    held = render(Hold(resume=7))
    assert [e.tag for e in held] == ["Gather", "Redirect"] and held.find("Redirect").text == f"{PREFIX}/hold?n=7"
    assert held.find("Gather").get("action") == f"{PREFIX}/hold?n=7" and held.find("Gather/Pause") is not None
    pressed = render(SendDigits("12#", resume=8))
    assert pressed.find("Play").get("digits") == "12#" and pressed.find("Redirect").text == f"{PREFIX}/hold?n=8"
    ended = render(EndCall(("Goodbye.",)))
    assert [e.tag for e in ended] == ["Say", "Hangup"] and ended.find("Say").text == "Goodbye."
    assert [e.tag for e in render(EndCall())] == ["Hangup"]


class RecordingCalls:
    """Stands in for the Calls API client: keeps what the transport asks of Twilio."""

    auth_token = "secret-token"

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, object]]] = []

    def create_call(self, approval: object, **fields: object) -> Placed:
        self.requests.append(("create", fields))
        return Placed("CA0001", "queued")

    def update_call(self, sid: str, **fields: object) -> str:
        self.requests.append((sid, fields))
        return "in-progress"


def transport() -> tuple[TwilioTransport, RecordingCalls]:
    calls = RecordingCalls()
    return TwilioTransport(calls, WebhookUrls(BASE)), calls  # type: ignore[arg-type]


def test_initiate_asks_for_machine_detection_or_sends_the_digits() -> None:
    carrier, calls = transport()
    assert carrier.initiate(object(), CALL, ring_timeout=25, send_digits=None) == Placed("CA0001", "queued")  # type: ignore[arg-type]
    carrier.initiate(object(), CALL, ring_timeout=25, send_digits="ww1234")  # type: ignore[arg-type]
    common = {"url": f"{PREFIX}/voice", "status_callback": f"{PREFIX}/status", "ring_timeout": 25}
    assert calls.requests == [
        ("create", {**common, "extra": {"machine_detection": "DetectMessageEnd"}}),
        ("create", {**common, "extra": {"send_digits": "ww1234"}}),
    ]


def test_hang_up_cancels_before_the_answer_and_says_the_last_line_after() -> None:
    carrier, calls = transport()
    carrier.hang_up("CA1", "pending")
    carrier.hang_up("CA1", "ringing")
    carrier.hang_up("CA1", "in-progress")
    carrier.hang_up("CA1", "in-progress", CALL, "Bye now.")
    assert [fields for _, fields in calls.requests[:3]] == [
        {"status": "completed"}, {"status": "canceled"}, {"status": "completed"}]
    document = ET.fromstring(str(calls.requests[3][1]["twiml"]))
    assert [e.tag for e in document] == ["Say", "Hangup"] and document.find("Say").text == "Bye now."


def test_send_digits_presses_then_comes_back_to_hold() -> None:
    carrier, calls = transport()
    carrier.send_digits("CA1", CALL, "9#", 4)
    sid, fields = calls.requests[0]
    document = ET.fromstring(str(fields["twiml"]))
    assert sid == "CA1" and document.find("Play").get("digits") == "9#"
    assert document.find("Redirect").text == f"{PREFIX}/hold?n=4"


def test_reattach_points_the_call_here_with_its_status_callback() -> None:
    carrier, calls = transport()
    carrier.reattach("CA1", CALL)
    carrier.reattach("CA1", CALL, resume=3)
    carrier.reattach("CA1", CALL, reask=2)
    carrier.reattach("CA1", CALL, goodbye="Sorry, I have to go.")
    callback = {"status_callback": f"{PREFIX}/status", "status_callback_method": "POST"}
    assert [fields for _, fields in calls.requests[:3]] == [
        {"url": f"{PREFIX}/voice", "method": "POST", **callback},
        {"url": f"{PREFIX}/hold?n=3", "method": "POST", **callback},
        {"url": f"{PREFIX}/gather?n=2", "method": "POST", **callback},
    ]
    last = calls.requests[3][1]
    assert {k: v for k, v in last.items() if k != "twiml"} == callback
    assert ET.fromstring(str(last["twiml"])).find("Say").text == "Sorry, I have to go."
