"""The call as the callee hears it: wait for the first word, dead air, lost words."""

from __future__ import annotations

import pytest
from twilio.twiml.voice_response import VoiceResponse

from twilio_caller.simulator import CalleeScript, CallRecord
from twilio_caller.simulator.callee import Speech
from twilio_caller.simulator.engine import HUMAN_DETECTION_SECONDS, REPLY_DELAY_SECONDS
from twilio_caller.simulator.timeline import speech_seconds

from .conftest import TO, Rig

# HTTP time counts one to one in simulated time: each expected wait adds what the app's answer
# took, as the simulator recorded it (a busy machine makes that seconds). What is left is the
# millisecond rounding of the experience figures.
ROUNDING = 0.002


def app_seconds(record: CallRecord, purpose: str) -> float:
    """The call time the app took to answer the request made for `purpose`."""
    (request,) = [r for r in record.requests if r.purpose == purpose]
    return request.seconds


def test_a_pause_before_the_first_say_is_the_wait_for_the_first_word(rig: Rig) -> None:
    def build(r: VoiceResponse) -> None:
        r.pause(length=3)
        r.say("Hello")
    rig.app.say("/voice", build)
    record = rig.finish(rig.call())
    assert record.experience.pickup_to_first_audio == pytest.approx(3 + app_seconds(record, "voice"), abs=ROUNDING)


def test_sync_amd_delays_the_first_word_by_the_detection_time(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("Hello"))
    record = rig.finish(rig.call(machine_detection="Enable"))
    assert HUMAN_DETECTION_SECONDS > 1
    assert record.experience.pickup_to_first_audio == pytest.approx(
        HUMAN_DETECTION_SECONDS + app_seconds(record, "voice"), abs=ROUNDING)


def test_async_amd_does_not_delay_the_first_word(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("Hello"))
    rig.app.say("/amd", lambda r: None)
    record = rig.finish(rig.call(machine_detection="Enable", async_amd="true",
                                 async_amd_status_callback=rig.app.url("/amd")))
    assert record.experience.pickup_to_first_audio == pytest.approx(app_seconds(record, "voice"), abs=ROUNDING)


def test_dead_air_runs_from_the_end_of_speech_to_the_next_word(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(replies=(Speech("yes please"),)))
    rig.app.say("/voice", lambda r: r.gather(input="speech", action="/got", speech_timeout="2").say("Shall I?"))
    def answer(r: VoiceResponse) -> None:
        r.pause(length=4)
        r.say("Done")
    rig.app.say("/got", answer)
    record = rig.finish(rig.call())
    assert record.experience.dead_air == (pytest.approx(2 + app_seconds(record, "action") + 4, abs=ROUNDING),)
    assert record.experience.lost_words == 0
    said = record.said[0]
    assert said.ends is not None
    assert (said.ends - said.at).total_seconds() == pytest.approx(REPLY_DELAY_SECONDS + speech_seconds("yes please"))


def test_speech_while_nothing_listens_counts_as_lost_words(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(replies=(Speech("can you hear me now"),)))
    rig.app.say("/voice", lambda r: r.gather(input="dtmf", timeout=1).say("Press one"))
    record = rig.finish(rig.call())
    assert record.experience.lost_words == 5
    assert record.experience.lost_utterances == ("can you hear me now",)
    assert record.experience.dead_air == ()
    assert rig.app.requests_to("/voice")[1:] == []  # nothing acted on the unheard speech
