"""The callee who speaks while held (`speak_while_holding`): a Gather of pauses hears the
words, a bare Pause does not — as on Twilio."""

from __future__ import annotations

import pytest
from twilio.twiml.voice_response import VoiceResponse

from twilio_caller.simulator import CalleeScript
from twilio_caller.simulator.callee import Speech, callee_book_from_dict
from twilio_caller.simulator.errors import CalleeScriptError

from .conftest import TO, Rig

LINE = "oh and bring the receipts"


def test_a_bare_pause_loses_what_the_callee_says(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(speak_while_holding=(Speech(LINE),)))
    def build(r: VoiceResponse) -> None:
        r.say("One moment")
        r.pause(length=2)
        r.say("Done")
    rig.app.say("/voice", build)
    record = rig.finish(rig.call())
    assert record.experience.lost_words == len(LINE.split())
    assert record.experience.lost_utterances == (LINE,)


def test_a_gather_of_pauses_hears_it_and_posts_it(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(replies=(Speech("not this one"),), speak_while_holding=(Speech(LINE),)))
    def build(r: VoiceResponse) -> None:
        r.say("One moment")
        r.gather(input="speech", action="/held", timeout=1).pause(length=1)
    rig.app.say("/voice", build)
    rig.app.say("/held", lambda r: r.say("Got it"))
    record = rig.finish(rig.call())
    (held,) = rig.app.requests_to("/held")
    assert held.params["SpeechResult"] == LINE  # the line for a silence, not the scripted reply
    assert record.experience.lost_words == 0


def test_a_gather_of_pauses_with_nothing_to_say_falls_through_silently(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(replies=(Speech("kept for the question"),)))
    def build(r: VoiceResponse) -> None:
        r.gather(input="speech", action="/held", timeout=1).pause(length=1)
        r.gather(input="speech", action="/answer").say("A question?")
    rig.app.say("/voice", build)
    rig.app.say("/answer", lambda r: r.say("Thanks"))
    rig.finish(rig.call())
    assert rig.app.requests_to("/held") == []
    (answer,) = rig.app.requests_to("/answer")
    assert answer.params["SpeechResult"] == "kept for the question"  # the reply was not used up


@pytest.mark.parametrize("bad", [{"speak_while_holding": "hello"}, {"speak_while_holding": [{"digits": "1"}]},
                                 {"speak_while_holding": [{"say": ""}]}])
def test_bad_holding_lines_are_refused_with_where(bad: dict) -> None:
    with pytest.raises(CalleeScriptError, match="speak_while_holding"):
        callee_book_from_dict({"+13125550100": bad})


def test_holding_lines_parse_from_a_script() -> None:
    book = callee_book_from_dict({"+13125550100": {"speak_while_holding": [{"say": LINE, "confidence": 0.7}]}})
    script = book.profile_for("+13125550100")
    assert isinstance(script, CalleeScript) and script.speak_while_holding == (Speech(LINE, 0.7),)
