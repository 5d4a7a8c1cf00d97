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
    Answered, Ask, EndCall, Heard, Hold, Line, Ready, Say, SendDigits, Silence, Speech, StatusChanged,
)
from twilio_caller.transport.twilio import twiml
from twilio_caller.transport.twilio.requests import MAX_SPEECH_CHARS, parse_event
from twilio_caller.transport.twilio.routes import WebhookUrls

BASE = "https://calls.example.com/"
SPEECH = Speech("Polly.Joanna", None, "en-US", "auto", 5, "phone_call", ())


@dataclass(frozen=True)
class Call:
    call_id: str = "call_0123456789abcdef"
    token: str = "tok-EN_42"
    speech: Speech = SPEECH


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


def render(command) -> ET.Element:  # type: ignore[no-untyped-def]
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
