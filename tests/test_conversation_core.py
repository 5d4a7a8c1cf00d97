"""The conversation core through the call-transport port alone, without HTTP: a fake transport
hands it neutral events and keeps the commands it answers with. A reply, a silence with its
reprompt, an opt-out, the agent's hang-up, a hold then a said line, digits, an interruption,
a replay, and a status that ends the call. (The simulator remains the contract test of the
Twilio transport.)"""

from __future__ import annotations

import json

import pytest

from twilio_caller.call_status import CallStatus
from twilio_caller.calls import CallWriter
from twilio_caller.conversation import OPT_OUT_GOODBYE, REPROMPT, SILENCE_GOODBYE, Budgets, Conversation
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import CallSession, HangUp, Speak
from twilio_caller.store.ports import NewCall
from twilio_caller.transport.port import (
    Answered,
    Ask,
    CallLine,
    Command,
    Digits,
    EndCall,
    Heard,
    Hold,
    Interrupted,
    Say,
    SendDigits,
    Silence,
    Speech,
    StatusChanged,
)
from twilio_caller.transport.port import Ready as ReadyEvent

OPENING = "Hi, this is Ada's assistant."
MESSAGE = "Does Friday at ten still work?"
CLOSING = "Thanks, I'll pass that on. Goodbye."
NUMBER = "+13125550101"
SPEECH = Speech("Polly.Joanna", None, "en-US", "auto", 5, "phone_call", ())


class FakeTransport:
    """Renders each command as a numbered token and keeps the command: what the core said is
    read back from `commands`, and a replay is seen to return the very token it got first."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def render(self, line: CallLine, command: Command) -> str:
        self.commands.append(command)
        return json.dumps({"call": line.call_id, "n": len(self.commands)})

    def command(self, document: str) -> Command:
        return self.commands[json.loads(document)["n"] - 1]


@pytest.fixture
def core(runtime: Runtime, transport: FakeTransport) -> Conversation:
    writer = CallWriter(runtime.store, runtime.clock)
    budgets = Budgets(hold_seconds=0.05, unsteered_seconds=600, reprompts=1)
    return Conversation(writer, runtime.contacts, runtime.clock, budgets, OPENING, transport)


def session_for(runtime: Runtime, *, keep_open: bool = False, call_id: str = "call_core1") -> CallSession:
    runtime.store.calls.insert(NewCall(
        id=call_id, token="t0ken", to_name="Bob", to_number=NUMBER, message=MESSAGE, mode="interactive",
        keep_open=keep_open, voice=SPEECH.voice, language="en-US",
    ), runtime.clock.now())
    return CallSession(call_id=call_id, token="t0ken", to_number=NUMBER, to_name="Bob", message=MESSAGE,
                       interactive=True, keep_open=keep_open, closing=CLOSING, speech=SPEECH,
                       reprompts_left=1, status="in-progress")


def said(runtime: Runtime, call_id: str) -> list[tuple[str, str]]:
    record = CallWriter(runtime.store, runtime.clock).get(call_id)
    assert record is not None
    return [(turn["speaker"], turn["text"]) for turn in record["transcript"]]


def test_a_reply_is_recorded_and_answered_with_the_closing(runtime, core, transport, loop) -> None:
    session = session_for(runtime)
    opened = transport.command(loop.run_until_complete(core.handle(session, Answered("human"))) or "")
    assert opened == Ask((OPENING, MESSAGE), turn=1)
    heard = Heard(1, "Yes, Friday works", 0.91, "call_core1:gather:1")
    closed = transport.command(loop.run_until_complete(core.answer(session, heard)))
    assert closed == EndCall((CLOSING,))
    assert [(o.kind, o.text, o.confidence) for o in session.outcomes] == [("reply", "Yes, Friday works", 0.91)]
    assert said(runtime, session.call_id) == [("assistant", OPENING), ("assistant", MESSAGE),
                                              ("callee", "Yes, Friday works"), ("assistant", CLOSING)]
    assert session.hung_up_by_us
    record = CallWriter(runtime.store, runtime.clock).get(session.call_id)
    assert record is not None and record["answered_by"] == "human"


def test_a_silence_is_reprompted_once_then_the_call_ends(runtime, core, transport, loop) -> None:
    session = session_for(runtime)
    loop.run_until_complete(core.answer(session, Answered(None)))
    again = transport.command(loop.run_until_complete(core.answer(session, Silence(1))))
    assert again == Ask((REPROMPT, MESSAGE), turn=2)
    assert session.reprompts_left == 0 and not session.outcomes
    ended = transport.command(loop.run_until_complete(core.answer(session, Silence(2))))
    assert ended == EndCall((SILENCE_GOODBYE,))
    assert [o.kind for o in session.outcomes] == ["no-speech"]
    record = CallWriter(runtime.store, runtime.clock).get(session.call_id)
    assert record is not None and record["no_reply_reason"] == "no-speech"


def test_an_opt_out_is_honoured_and_answered_with_the_opt_out_goodbye(runtime, core, transport, loop) -> None:
    runtime.contacts.add("Bob", NUMBER)
    session = session_for(runtime)
    loop.run_until_complete(core.answer(session, Answered("human")))
    heard = Heard(1, "Please don't call me again", None, "call_core1:gather:1")
    assert transport.command(loop.run_until_complete(core.answer(session, heard))) == EndCall((OPT_OUT_GOODBYE,))
    assert session.opted_out
    assert runtime.contacts.get("Bob").opted_out_at is not None


def test_the_agents_hang_up_is_the_answer_to_the_waiting_turn(runtime, core, transport, loop) -> None:
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    goodbye = HangUp("Talk soon, bye.")
    session.submit(goodbye)
    heard = Heard(1, "Hello?", 0.8, "call_core1:gather:1")
    assert transport.command(loop.run_until_complete(core.answer(session, heard))) == EndCall(("Talk soon, bye.",))
    assert goodbye.delivered.is_set()
    assert said(runtime, session.call_id)[-2:] == [("callee", "Hello?"), ("assistant", "Talk soon, bye.")]


def test_a_hold_then_a_said_line_then_digits(runtime, core, transport, loop) -> None:
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    heard = Heard(1, "Sure, go ahead", 0.9, "call_core1:gather:1")
    assert transport.command(loop.run_until_complete(core.answer(session, heard))) == Hold(resume=1)
    line = Speak("One moment please.", expect_reply=False)
    session.submit(line)
    first = loop.run_until_complete(core.answer(session, ReadyEvent(1)))
    assert transport.command(first) == Say(("One moment please.",), resume=2)
    assert line.delivered.is_set()
    assert loop.run_until_complete(core.answer(session, ReadyEvent(1))) == first  # a replay: the same answer
    assert len(transport.commands) == 3
    from twilio_caller.sessions import Press

    session.submit(Press("1234"))
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(2)))) == SendDigits("1234", 3)
    stale = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1_000))))
    assert stale == Hold(resume=3)  # a resume number never given: steady, takes nothing


def test_digits_are_a_reply_and_an_interruption_is_on_record(runtime, core, transport, loop) -> None:
    session = session_for(runtime)
    loop.run_until_complete(core.answer(session, Answered("human")))
    assert loop.run_until_complete(core.handle(session, Interrupted("Hi, this is Ada's"))) is None
    assert {"event": "interrupted", "heard": "Hi, this is Ada's"} in session.events
    assert runtime.store.calls.event_payloads(session.call_id, "interrupted") == [{"heard": "Hi, this is Ada's"}]
    pressed = Digits(1, "2", "call_core1:gather:1")
    assert transport.command(loop.run_until_complete(core.answer(session, pressed))) == EndCall((CLOSING,))
    assert [(o.kind, o.text) for o in session.outcomes] == [("reply", "2")]


def test_a_final_status_ends_the_session_once(runtime, core, loop) -> None:
    session = session_for(runtime)
    done = StatusChanged(CallStatus.COMPLETED, 3, None, 42, {"CallStatus": "completed", "SequenceNumber": "3"})
    loop.run_until_complete(core.status(session, done))
    assert loop.run_until_complete(core.handle(session, done)) is None  # a duplicate changes nothing
    assert session.ended and session.status == "completed"
    assert [e for e in session.events if e == {"event": "completed"}] == [{"event": "completed"}]
    record = CallWriter(runtime.store, runtime.clock).get(session.call_id)
    assert record is not None and record["status"] == "completed" and record["duration_seconds"] == 42
