"""A broken TwiML app fails the call the way Twilio fails it, never the simulator."""

from __future__ import annotations

from starlette.responses import Response
from twilio.twiml.voice_response import VoiceResponse

from twilio_caller.simulator import CalleeScript, Speech
from twilio_caller.simulator.engine import APPLICATION_ERROR

from .conftest import TO, Rig
from .twiml_app import Received, wav_bytes


def xml(body: str, status: int = 200, media_type: str = "text/xml") -> Response:
    return Response(body, status_code=status, media_type=media_type)


def assert_failed_with(rig: Rig, sid: str, code: int) -> None:
    record = rig.finish(sid)
    assert record.status == "completed" and record.end_reason == "application-error"
    assert [error.code for error in record.errors if error.fatal] == [code]
    assert record.heard_text[-1] == APPLICATION_ERROR


def test_unparsable_twiml_is_12100(rig: Rig) -> None:
    rig.app.on("/voice", lambda _: xml("<Response><Say>unclosed</Response>"))
    assert_failed_with(rig, rig.call(), 12100)


def test_unknown_verb_or_wrong_root_is_12100(rig: Rig) -> None:
    rig.app.on("/voice", lambda _: xml("<Response><Shout>hi</Shout></Response>"))
    rig.app.on("/root", lambda _: xml("<Reply><Say>hi</Say></Reply>"))
    rig.app.on("/nested", lambda _: xml("<Response><Gather><Hangup/></Gather></Response>"))
    for path in ("/voice", "/root", "/nested"):
        assert_failed_with(rig, rig.call(path), 12100)


def test_unknown_attribute_is_a_12200_warning_and_the_call_goes_on(rig: Rig) -> None:
    rig.app.on("/voice", lambda _: xml('<Response><Say colour="red">hi</Say><Pause length="soon"/></Response>'))
    record = rig.finish(rig.call())
    assert record.end_reason == "end-of-twiml" and record.heard_text == ["hi"]
    assert [(error.code, error.fatal) for error in record.errors] == [(12200, False), (12200, False)]


def test_wrong_content_type_is_12300(rig: Rig) -> None:
    rig.app.on("/voice", lambda _: xml("<Response><Say>hi</Say></Response>", media_type="application/json"))
    assert_failed_with(rig, rig.call(), 12300)


def test_non_2xx_is_11200(rig: Rig) -> None:
    rig.app.on("/voice", lambda _: xml("oops", status=500))
    assert_failed_with(rig, rig.call(), 11200)
    assert_failed_with(rig, rig.call("/missing"), 11200)


def test_a_webhook_slower_than_the_fragment_limit_is_11200(rig: Rig) -> None:
    async def slow(_: Received) -> Response:
        return await rig.app.hold()

    rig.app.on("/voice", slow)
    sid = rig.call("/voice#tt=300")
    assert_failed_with(rig, sid, 11200)
    (request,) = rig.app.requests_to("/voice")
    assert "#" not in request.url and request.signature_valid


def test_chaos_stalls_the_next_webhook_past_the_limit(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("on time"))
    rig.simulator.chaos.stall_next_webhooks(1)
    assert_failed_with(rig, rig.call("/voice#rt=200&tt=200"), 11200)
    assert rig.finish(rig.call()).heard_text == ["on time"]


def test_fallback_url_takes_over_with_error_code_and_url(rig: Rig) -> None:
    rig.app.on("/voice", lambda _: xml("<Response><Oops/></Response>"))
    rig.app.say("/fallback", lambda r: r.say("fallback speaking"))
    record = rig.finish(rig.call(fallback_url=rig.app.url("/fallback")))
    (fallback,) = rig.app.requests_to("/fallback")
    assert fallback.params["ErrorCode"] == "12100" and fallback.params["ErrorUrl"] == rig.app.url("/voice")
    assert fallback.signature_valid
    assert record.heard_text == ["fallback speaking"] and record.end_reason == "end-of-twiml"


def test_a_failing_fallback_ends_the_call(rig: Rig) -> None:
    rig.app.on("/voice", lambda _: xml("", status=503))
    rig.app.on("/fallback", lambda _: xml("not xml at all"))
    record = rig.finish(rig.call(fallback_url=rig.app.url("/fallback")))
    assert [error.code for error in record.errors] == [11200, 12100]
    assert record.heard_text == [APPLICATION_ERROR]


def test_a_broken_gather_action_fails_only_that_call(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(replies=(Speech("hello"),)))
    rig.app.say("/voice", lambda r: r.gather(input="speech", action="/answer").say("Hi?"))
    rig.app.on("/answer", lambda _: xml("<Response><Say>half", status=200))
    assert_failed_with(rig, rig.call(), 12100)
    rig.app.say("/fine", lambda r: r.say("still working"))
    assert rig.finish(rig.call("/fine")).heard_text == ["still working"]


def test_inline_twiml_with_a_relative_action_is_11100(rig: Rig) -> None:
    sid = rig.client.calls.create(
        to=TO, from_="+13125550199", twiml='<Response><Gather input="speech" action="/relative"><Say>x</Say></Gather></Response>'
    ).sid
    assert_failed_with(rig, str(sid), 11100)


def test_play_of_non_audio_or_missing_media_is_recorded_and_the_call_goes_on(rig: Rig) -> None:
    rig.app.on("/page.html", lambda _: Response("<html/>", media_type="text/html"))
    rig.app.on("/sound.wav", lambda _: Response(wav_bytes(1.0), media_type="audio/wav"))
    def build(r: VoiceResponse) -> None:
        r.play("/page.html")
        r.play("/gone.mp3")
        r.play("/sound.wav")
    rig.app.say("/voice", build)
    record = rig.finish(rig.call())
    assert [(error.code, error.fatal) for error in record.errors] == [(12300, False), (11200, False)]
    assert [item.text for item in record.heard] == [rig.app.url("/sound.wav")]


def test_an_audio_answer_to_the_url_is_played(rig: Rig) -> None:
    rig.app.on("/voice", lambda _: Response(wav_bytes(4.0), media_type="audio/wav"))
    record = rig.finish(rig.call())
    assert [item.kind for item in record.heard] == ["play"] and record.errors == []


def test_status_callback_failures_are_only_warnings(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("hi"))
    record = rig.finish(rig.call(status_callback=rig.app.url("/no-such-status")))
    assert record.status == "completed"
    assert [(error.code, error.fatal) for error in record.errors] == [(15003, False)]
