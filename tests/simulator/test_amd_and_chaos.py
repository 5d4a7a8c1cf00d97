"""Answering-machine detection, and the chaos switches on status callbacks."""

from __future__ import annotations

import pytest
from starlette.responses import Response
from twilio.twiml.voice_response import VoiceResponse

from twilio_caller.simulator import CalleeScript

from .conftest import TO, Rig

ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


@pytest.mark.parametrize(
    ("callee", "mode", "answered_by"),
    [
        (CalleeScript(answer="human"), "Enable", "human"),
        (CalleeScript(answer="machine"), "Enable", "machine_start"),
        (CalleeScript(answer="human"), "DetectMessageEnd", "human"),
        (CalleeScript(answer="machine", greeting_seconds=8), "DetectMessageEnd", "machine_end_beep"),
        (CalleeScript(answer="machine", beep=False), "DetectMessageEnd", "machine_end_silence"),
        (CalleeScript(answer="machine", greeting_seconds=40), "DetectMessageEnd", "unknown"),
    ],
)
def test_sync_amd_sets_answered_by_before_the_url_request(
    rig: Rig, callee: CalleeScript, mode: str, answered_by: str
) -> None:
    rig.simulator.set_callee(TO, callee)
    rig.app.say("/voice", lambda r: r.say("Hi"))
    sid = rig.call(machine_detection=mode)
    record = rig.finish(sid)
    assert rig.app.requests_to("/voice")[0].params["AnsweredBy"] == answered_by
    assert record.answered_by == answered_by
    assert rig.client.calls(sid).fetch().answered_by == answered_by


def test_detect_message_end_waits_for_the_beep_so_the_message_lands_in_voicemail(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(answer="machine", greeting_seconds=12))
    rig.app.say("/voice", lambda r: r.say("Robert will be late today"))
    record = rig.finish(rig.call(machine_detection="DetectMessageEnd"))
    assert [item.text for item in record.voicemail] == ["Robert will be late today"]
    assert record.duration == 14  # 12 s greeting, then 5 words


def test_enable_answers_early_so_speech_over_the_greeting_misses_the_voicemail(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(answer="machine", greeting_seconds=12))
    def build(r: VoiceResponse) -> None:
        r.say("too early")
        r.pause(length=10)
        r.say("after the beep")
    rig.app.say("/voice", build)
    record = rig.finish(rig.call(machine_detection="Enable"))
    assert [item.text for item in record.voicemail] == ["after the beep"]


def test_async_amd_fetches_the_url_at_once_and_posts_the_result_later(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(answer="machine", greeting_seconds=8))
    rig.app.say("/voice", lambda r: r.pause(length=60))
    rig.app.on("/amd", lambda _: Response(status_code=204))
    sid = rig.call(
        machine_detection="DetectMessageEnd",
        async_amd="true",
        async_amd_status_callback=rig.app.url("/amd"),
    )
    record = rig.finish(sid)
    assert "AnsweredBy" not in rig.app.requests_to("/voice")[0].params
    (amd,) = rig.app.requests_to("/amd")
    assert amd.signature_valid and amd.params["CallSid"] == sid
    assert (amd.params["AnsweredBy"], amd.params["MachineDetectionDuration"]) == ("machine_end_beep", "8000")
    assert record.answered_by == "machine_end_beep"


def test_send_digits_turns_amd_off(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("Hi"))
    record = rig.finish(rig.call(machine_detection="Enable", send_digits="1234"))
    assert record.answered_by is None and record.sent_digits == ["1234"]
    assert "AnsweredBy" not in rig.app.requests_to("/voice")[0].params


def status_call(rig: Rig) -> list[str]:
    rig.app.say("/voice", lambda r: r.say("Hi"))
    rig.app.on("/status", lambda _: Response(status_code=204))
    rig.finish(rig.call(status_callback=rig.app.url("/status"), status_callback_event=ALL_EVENTS))
    return [c.params["SequenceNumber"] for c in rig.app.requests_to("/status")]


def test_chaos_duplicates_status_callbacks(rig: Rig) -> None:
    rig.simulator.chaos.duplicate_status_callbacks = True
    assert status_call(rig) == ["0", "0", "1", "1", "2", "2", "3", "3"]


def test_chaos_reorders_status_callbacks(rig: Rig) -> None:
    rig.simulator.chaos.reorder_status_callbacks = True
    assert status_call(rig) == ["3", "2", "1", "0"]


def test_chaos_reset_restores_order(rig: Rig) -> None:
    rig.simulator.chaos.reorder_status_callbacks = True
    rig.simulator.chaos.fail_next_creates(3)
    rig.simulator.chaos.reset()
    assert status_call(rig) == ["0", "1", "2", "3"]


def test_round_robin_sends_each_request_to_the_next_instance_and_the_others_after_it() -> None:
    from twilio_caller.simulator.chaos import Chaos

    chaos = Chaos()
    chaos.round_robin("https://calls.example.com/", ["http://127.0.0.1:1/", "http://127.0.0.1:2"])
    url = "https://calls.example.com/twilio/call_a/t/hold?n=1"
    turns = [chaos.balance(url) for _ in range(3)]
    assert turns == [
        ["http://127.0.0.1:1/twilio/call_a/t/hold?n=1", "http://127.0.0.1:2/twilio/call_a/t/hold?n=1"],
        ["http://127.0.0.1:2/twilio/call_a/t/hold?n=1", "http://127.0.0.1:1/twilio/call_a/t/hold?n=1"],
        ["http://127.0.0.1:1/twilio/call_a/t/hold?n=1", "http://127.0.0.1:2/twilio/call_a/t/hold?n=1"],
    ]
    assert chaos.balance("https://calls.example.org/x") == []  # another host: its own way
    chaos.reset()
    assert chaos.balance(url) == []
    with pytest.raises(ValueError, match="at least one"):
        chaos.round_robin("https://calls.example.com", [])
