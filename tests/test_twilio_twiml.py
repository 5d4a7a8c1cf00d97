"""Every TwiML builder, read back as XML: hostile text stays text, and each verb carries the
attributes Twilio needs (a Gather that posts silence too, redirects by POST, a real pause)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from twilio_caller.transport.port import Line, Speech
from twilio_caller.transport.twilio import twiml

HOSTILE = [
    "</Say><Dial>+19005550100</Dial><Say>",
    "<![CDATA[<Hangup/>]]> & \"quotes\" 'apostrophes'",
    "<?xml version='1.0'?><Response><Play>http://evil.example.com/x.mp3</Play></Response>",
]
SPEECH = Speech(voice="Polly.Brian", language="en-GB", recognition_language="en-GB",
                      speech_timeout="auto", timeout=7, speech_model="phone_call", hints=("Robert", "late"))
HOLD = "https://calls.example.com/twilio/call_1/token/hold"


def parse(document: str) -> ET.Element:
    root = ET.fromstring(document)
    assert root.tag == "Response"
    return root


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


@pytest.mark.parametrize("text", HOSTILE)
def test_notify_says_hostile_text_as_text_then_hangs_up(text: str) -> None:
    root = parse(twiml.notify(SPEECH, ["Hello", text]))
    assert verbs(root) == ["Say", "Say", "Hangup"]
    said = root.findall("Say")
    assert [s.text for s in said] == ["Hello", text]
    assert all(s.get("voice") == "Polly.Brian" and s.get("language") == "en-GB" for s in said)


@pytest.mark.parametrize("text", HOSTILE)
def test_ask_listens_for_speech_and_posts_silence_too(text: str) -> None:
    action = "https://calls.example.com/twilio/call_1/token/gather?n=2"
    root = parse(twiml.ask(SPEECH, [text, "Anything else?"], action))
    assert verbs(root) == ["Gather"]
    gather = root.find("Gather")
    assert gather is not None
    assert gather.attrib == {
        "input": "dtmf speech", "action": action, "method": "POST", "timeout": "7", "speechTimeout": "auto",
        "speechModel": "phone_call", "language": "en-GB", "hints": "Robert, late", "actionOnEmptyResult": "true",
    }
    assert [(s.tag, s.text, s.get("voice")) for s in gather] == [
        ("Say", text, "Polly.Brian"), ("Say", "Anything else?", "Polly.Brian")]


def test_ask_without_hints_sends_no_hints() -> None:
    speech = Speech("Polly.Brian", None, "en-US", "auto", 5, "phone_call", ())
    gather = parse(twiml.ask(speech, ["Hi"], HOLD)).find("Gather")
    assert gather is not None and "hints" not in gather.attrib
    assert gather.find("Say").get("language") is None  # the Polly voice fixes the language


@pytest.mark.parametrize("text", HOSTILE)
def test_say_then_hold_speaks_then_redirects_by_post(text: str) -> None:
    root = parse(twiml.say_then_hold(SPEECH, [text], HOLD))
    assert verbs(root) == ["Say", "Redirect"]
    assert root.find("Say").text == text
    redirect = root.find("Redirect")
    assert (redirect.text, redirect.get("method")) == (HOLD, "POST")


def test_hold_listens_around_its_pause_then_redirects_by_post() -> None:
    root = parse(twiml.hold(HOLD, SPEECH, pause_seconds=2))
    assert verbs(root) == ["Gather", "Redirect"]
    gather = root.find("Gather")
    assert (gather.get("input"), gather.get("action"), gather.get("method")) == ("speech", HOLD, "POST")
    assert gather.get("actionOnEmptyResult") is None  # nothing said: the Redirect asks the hold URL
    assert [child.tag for child in gather] == ["Pause"] and gather.find("Pause").get("length") == "2"
    assert gather.get("timeout") == "2" and gather.get("language") == SPEECH.recognition_language
    assert parse(twiml.hold(HOLD, SPEECH)).find("Gather/Pause").get("length") == "1"
    redirect = root.find("Redirect")
    assert (redirect.text, redirect.get("method")) == (HOLD, "POST")


def test_an_acknowledgement_is_said_before_the_listening_pause() -> None:
    root = parse(twiml.hold(HOLD, SPEECH, lines=["Mm-hm, one moment."]))
    assert verbs(root) == ["Say", "Gather", "Redirect"]
    assert root.find("Say").text == "Mm-hm, one moment." and root.find("Say").get("voice") == SPEECH.voice


@pytest.mark.parametrize("digits", ["1w2#", "</Play><Hangup/>"])
def test_press_plays_digits_then_redirects(digits: str) -> None:
    root = parse(twiml.press(digits, HOLD + "?a=1&b=<2>"))
    assert verbs(root) == ["Play", "Redirect"]
    assert root.find("Play").get("digits") == digits
    redirect = root.find("Redirect")
    assert (redirect.text, redirect.get("method")) == (HOLD + "?a=1&b=<2>", "POST")


def test_pre_generated_audio_is_played_in_place_of_say() -> None:
    url = "https://calls.example.com/audio/tok/" + "a" * 64 + ".mp3"
    root = parse(twiml.notify(SPEECH, [Line("Hello", url), Line("<b>no audio</b>")]))
    assert verbs(root) == ["Play", "Say", "Hangup"]
    assert root.find("Play").text == url
    assert root.find("Say").text == "<b>no audio</b>"
