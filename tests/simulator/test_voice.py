"""The voice engine through every verb and outcome, against a TwiML app over loopback."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest
from starlette.responses import Response
from twilio.twiml.voice_response import VoiceResponse

from twilio_caller.simulator import CalleeScript, Digits, HangUp, Silence, Speech

from .conftest import ACCOUNT_SID, FROM, TO, Rig
from .twiml_app import Received, wav_bytes

ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


def script(*replies: Speech | Digits | Silence | HangUp, **settings: object) -> CalleeScript:
    return CalleeScript(replies=tuple(replies), **settings)  # type: ignore[arg-type]


def ask(response: VoiceResponse, question: str = "How are you?", **attributes: object) -> None:
    gather = response.gather(action="/answer", **attributes)
    gather.say(question)


def test_url_request_carries_twilios_parameters_and_a_valid_signature(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("Hello"))
    sid = rig.call()
    rig.finish(sid)
    (request,) = rig.app.requests_to("/voice")
    assert request.method == "POST" and request.signature_valid
    assert request.user_agent == "TwilioProxy/1.1"
    assert request.params == {
        "CallSid": sid, "AccountSid": ACCOUNT_SID, "From": FROM, "To": TO, "CallStatus": "in-progress",
        "ApiVersion": "2010-04-01", "Direction": "outbound-api", "Caller": FROM, "Called": TO,
    }


def test_get_method_sends_parameters_in_the_query_string_signed_over_the_full_url(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("Hello"))
    sid = rig.call(method="GET")
    rig.finish(sid)
    (request,) = rig.app.requests_to("/voice")
    assert request.method == "GET" and request.signature_valid
    assert request.params["CallSid"] == sid and "?" in request.url


def test_say_pause_and_end_of_document_complete_the_call(rig: Rig) -> None:
    def build(r: VoiceResponse) -> None:
        r.say("one two three four five", voice="Polly.Brian")
        r.pause(length=10)
        r.say("bye now", loop=2)

    rig.app.say("/voice", build)
    record = rig.finish(rig.call())
    assert record.heard_text == ["one two three four five", "bye now", "bye now"]
    assert (record.status, record.end_reason) == ("completed", "end-of-twiml")
    # 5 words = 2 s, pause 10 s, 2 x 2 words = 1.6 s: 13.6 s of simulated time
    assert record.duration == 14
    assert record.statuses == ["queued", "ringing", "in-progress", "completed"]


def test_gather_speech_posts_speech_result_and_confidence_to_the_action(rig: Rig) -> None:
    rig.simulator.set_callee(TO, script(Speech("I will be there at noon", 0.87)))
    rig.app.say("/voice", lambda r: ask(r, input="speech", speech_timeout="auto"))
    rig.app.say("/answer", lambda r: r.say("Thanks, goodbye"))
    record = rig.finish(rig.call())
    (answer,) = rig.app.requests_to("/answer")
    assert answer.params["SpeechResult"] == "I will be there at noon"
    assert answer.params["Confidence"] == "0.87"
    assert answer.signature_valid and answer.params["CallStatus"] == "in-progress"
    assert record.heard_text == ["How are you?", "Thanks, goodbye"]
    assert record.said_text == ["I will be there at noon"]


def test_gather_dtmf_honours_num_digits_and_finish_on_key(rig: Rig) -> None:
    rig.simulator.set_callee(TO, script(Digits("1234#9"), Digits("56789")))
    def build(r: VoiceResponse) -> None:
        r.gather(action="/first", input="dtmf")
    rig.app.say("/voice", build)
    rig.app.say("/first", lambda r: r.gather(action="/second", num_digits=2))
    rig.app.say("/second", lambda r: r.hangup())
    record = rig.finish(rig.call())
    first, second = rig.app.requests_to("/first")[0], rig.app.requests_to("/second")[0]
    assert (first.params["Digits"], first.params["FinishedOnKey"]) == ("1234", "#")
    assert second.params["Digits"] == "56"
    assert record.end_reason == "hangup"


def test_gather_without_input_falls_through_to_the_next_verb(rig: Rig) -> None:
    rig.simulator.set_callee(TO, script(Silence(), Speech("too late")))
    def build(r: VoiceResponse) -> None:
        ask(r, input="speech", timeout=3)
        r.say("Nothing heard, goodbye")
    rig.app.say("/voice", build)
    record = rig.finish(rig.call())
    assert rig.app.requests_to("/answer") == []
    assert record.heard_text == ["How are you?", "Nothing heard, goodbye"]


def test_speech_to_a_dtmf_only_gather_is_not_heard(rig: Rig) -> None:
    rig.simulator.set_callee(TO, script(Speech("press what?")))
    def build(r: VoiceResponse) -> None:
        ask(r)  # input defaults to dtmf
        r.say("fell through")
    rig.app.say("/voice", build)
    record = rig.finish(rig.call())
    assert rig.app.requests_to("/answer") == []
    assert record.said_text == ["press what?"] and record.heard_text[-1] == "fell through"


def test_action_on_empty_result_posts_without_result_fields(rig: Rig) -> None:
    rig.simulator.set_callee(TO, script(Silence()))
    rig.app.say("/voice", lambda r: ask(r, input="speech dtmf", action_on_empty_result=True))
    rig.app.say("/answer", lambda r: r.hangup())
    rig.finish(rig.call())
    (answer,) = rig.app.requests_to("/answer")
    assert not {"SpeechResult", "Confidence", "Digits"} & set(answer.params)


def test_gather_nests_say_play_and_pause_and_the_default_action_is_the_document(rig: Rig) -> None:
    rig.simulator.set_callee(TO, script(Speech("yes"), HangUp()))
    rig.app.on("/beep.wav", lambda _: Response(wav_bytes(2.0), media_type="audio/wav"))

    def voice(received: Received) -> VoiceResponse:
        response = VoiceResponse()
        if "SpeechResult" in received.params:
            response.say(f"you said {received.params['SpeechResult']}")
            response.gather(input="speech").say("anything else?")
            return response
        gather = response.gather(input="speech")
        gather.say("first")
        gather.play("/beep.wav")
        gather.pause(length=1)
        return response

    rig.app.on("/voice", voice)
    record = rig.finish(rig.call())
    assert len(rig.app.requests_to("/voice")) == 2
    assert [item.kind for item in record.heard] == ["say", "play", "say", "say"]
    assert record.heard_text == ["first", "you said yes", "anything else?"]
    assert record.end_reason == "callee-hangup" and record.status == "completed"
    assert rig.app.requests_to("/beep.wav")[0].method == "GET"


def test_redirect_and_hangup(rig: Rig) -> None:
    def build(r: VoiceResponse) -> None:
        r.say("moving")
        r.redirect("/elsewhere", method="GET")
        r.say("never said")
    rig.app.say("/voice", build)
    def elsewhere(r: VoiceResponse) -> None:
        r.say("arrived")
        r.hangup()
        r.say("never said either")
    rig.app.say("/elsewhere", elsewhere)
    record = rig.finish(rig.call())
    assert record.heard_text == ["moving", "arrived"] and record.end_reason == "hangup"
    assert rig.app.requests_to("/elsewhere")[0].method == "GET"


def test_record_posts_the_recording_and_silence_moves_on(rig: Rig) -> None:
    rig.simulator.set_callee(TO, script(Silence(), Speech("leave this message for Robert please")))
    def build(r: VoiceResponse) -> None:
        r.record(action="/recorded", timeout=2, max_length=60)
        r.say("again")
        r.record(action="/recorded", timeout=2, play_beep=False)
    rig.app.say("/voice", build)
    rig.app.say("/recorded", lambda r: r.hangup())
    record = rig.finish(rig.call())
    (recorded,) = rig.app.requests_to("/recorded")
    assert recorded.params["RecordingSid"].startswith("RE")
    assert recorded.params["RecordingUrl"].endswith(f"/Accounts/{ACCOUNT_SID}/Recordings/{recorded.params['RecordingSid']}")
    assert recorded.params["RecordingDuration"] == "2"  # 6 words = 2.4 s
    assert [item.kind for item in record.heard] == ["beep", "say"]


def test_play_fetches_audio_and_counts_its_length(rig: Rig) -> None:
    rig.app.on("/hello.wav", lambda _: Response(wav_bytes(30.0), media_type="audio/x-wav"))
    def build(r: VoiceResponse) -> None:
        r.play("/hello.wav", loop=2)
        r.play(digits="ww12")
    rig.app.say("/voice", build)
    record = rig.finish(rig.call())
    assert record.duration == 62  # 2 x 30 s + 2 waits of 0.5 s + 2 digits of 0.3 s
    assert record.sent_digits == ["ww12"]
    assert [item.kind for item in record.heard] == ["play", "play", "digits"]
    assert record.errors == []


def test_status_callbacks_for_every_requested_event(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("Hello there"))
    rig.app.on("/status", lambda _: Response(status_code=204))
    sid = rig.call(status_callback=rig.app.url("/status"), status_callback_event=ALL_EVENTS)
    record = rig.finish(sid)
    callbacks = rig.app.requests_to("/status")
    assert [c.params["CallStatus"] for c in callbacks] == ["initiated", "ringing", "in-progress", "completed"]
    assert [c.params["SequenceNumber"] for c in callbacks] == ["0", "1", "2", "3"]
    assert all(c.signature_valid and c.params["CallSid"] == sid for c in callbacks)
    assert all(c.params["CallbackSource"] == "call-progress-events" for c in callbacks)
    stamps = [parsedate_to_datetime(c.params["Timestamp"]) for c in callbacks]
    assert stamps == sorted(stamps)
    final = callbacks[-1].params
    assert final["CallDuration"] == str(record.duration) and final["SipResponseCode"] == "200"


def test_only_completed_is_sent_by_default(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("Hello"))
    rig.app.on("/status", lambda _: Response(status_code=200))
    rig.finish(rig.call(status_callback=rig.app.url("/status"), status_callback_method="GET"))
    (callback,) = rig.app.requests_to("/status")
    assert callback.method == "GET" and callback.params["CallStatus"] == "completed"


@pytest.mark.parametrize(
    ("callee", "status", "sip"),
    [
        (CalleeScript(answer="busy"), "busy", "486"),
        (CalleeScript(answer="failed"), "failed", "500"),
        (CalleeScript(answer="no-answer"), "no-answer", "487"),
        (CalleeScript(answer="human", ring_seconds=45), "no-answer", "487"),
    ],
    ids=["busy", "failed", "no-answer", "rings-past-timeout"],
)
def test_unanswered_outcomes(rig: Rig, callee: CalleeScript, status: str, sip: str) -> None:
    rig.simulator.set_callee(TO, callee)
    rig.app.on("/status", lambda _: Response(status_code=204))
    sid = rig.call(timeout=30, status_callback=rig.app.url("/status"), status_callback_event=ALL_EVENTS)
    record = rig.finish(sid)
    assert record.status == status and record.duration is None and record.end_time is None
    assert rig.app.requests_to("/voice") == []
    final = rig.app.requests_to("/status")[-1].params
    assert (final["CallStatus"], final["SipResponseCode"], final["CallDuration"]) == (status, sip, "0")
    fetched = rig.client.calls(sid).fetch()
    assert fetched.status == status and fetched.duration is None


def test_timeout_bounds_the_ringing_in_simulated_time(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(answer="no-answer"))
    record = rig.finish(rig.call(timeout=20))
    assert record.start_time is not None and record.date_updated is not None
    ringing = (record.date_updated - record.start_time).total_seconds()
    assert ringing == pytest.approx(1 + 20, abs=0.2)  # dialing, then 20 s of ringing


def test_time_limit_ends_the_call(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.pause(length=100000))
    record = rig.finish(rig.call(time_limit=90))
    assert (record.status, record.end_reason, record.duration) == ("completed", "time-limit", 90)


def test_update_time_limit_on_a_live_call(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.pause(length=100000))
    sid = rig.call()
    rig.app.wait_for("/voice")
    rig.client.calls(sid).update(time_limit=5)
    record = rig.finish(sid)
    # The call ends at the new limit, or at once when more time has passed already (at this
    # time scale a few real milliseconds are many simulated seconds): never after the pause.
    assert record.end_reason == "time-limit" and record.duration is not None
    assert record.duration < 1000


def test_send_digits_is_recorded_and_heard(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("menu passed"))
    record = rig.finish(rig.call(send_digits="1w2#"))
    assert record.sent_digits == ["1w2#"]
    assert [item.kind for item in record.heard] == ["digits", "say"]


def test_friendly_default_callee_says_okay_thanks(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: ask(r, input="speech"))
    rig.app.say("/answer", lambda r: r.hangup())
    rig.finish(rig.call(to="+13125550177"))
    assert rig.app.requests_to("/answer")[0].params["SpeechResult"] == "Okay, thanks"
