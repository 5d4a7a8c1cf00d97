"""What the agent is told and what a failed write undoes, through the fake transport (no HTTP):
each progress event on the session's stream (heard, said, silence, opted-out, pressed,
unsteered, answered, failed), the silence path's goodbye, the rollback of an answer the store
refused (the taken action back at the front of the queue, the counters back to the store's),
and a restore after a restart (the reprompts left and the actions queued)."""

from __future__ import annotations

import asyncio

import pytest
from test_conversation_core import CLOSING, MESSAGE, OPENING, FakeTransport, said, session_for

from twilio_caller.audio import Fallback
from twilio_caller.call_status import CallStatus
from twilio_caller.calls import CallWriter
from twilio_caller.conversation import (
    ANSWER_SECONDS,
    FAILURE_GOODBYE,
    OPT_OUT_GOODBYE,
    REPROMPT,
    SILENCE_GOODBYE,
    Budgets,
    Conversation,
    Voicing,
)
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import CallSession, Press, Speak
from twilio_caller.transport.port import Answered, Ask, EndCall, Heard, Hold, Say, Silence, StatusChanged
from twilio_caller.transport.port import Ready as ReadyEvent


def conversation(runtime: Runtime, transport: FakeTransport, *, unsteered: float = 600) -> Conversation:
    budgets = Budgets(hold_seconds=0.05, unsteered_seconds=unsteered, reprompts=1)
    return Conversation(CallWriter(runtime.store, runtime.clock), runtime.contacts, runtime.clock, budgets,
                        OPENING, transport)


def settle(loop: asyncio.AbstractEventLoop, turns: int = 10) -> None:
    """Give woken tasks a few loop turns (no wall-clock time: a task still asleep stays asleep)."""
    for _ in range(turns):
        loop.run_until_complete(asyncio.sleep(0))


def saids(session: CallSession) -> list[object]:
    return [e["text"] for e in session.events if e.get("event") == "said"]


def test_a_reply_then_the_closing_are_events_and_we_hang_up(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime)
    loop.run_until_complete(core.answer(session, Answered("human")))
    heard = Heard(1, "Yes", 0.9, "call_core1:gather:1")
    assert transport.command(loop.run_until_complete(core.answer(session, heard))) == EndCall((CLOSING,))
    assert {"event": "heard", "text": "Yes", "confidence": 0.9} in session.events
    assert saids(session) == [OPENING, MESSAGE, CLOSING]
    assert session.hung_up_by_us


def test_the_silence_path_tells_the_agent_and_says_the_silence_goodbye(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime)
    loop.run_until_complete(core.answer(session, Answered(None)))
    loop.run_until_complete(core.answer(session, Silence(1)))
    assert session.reprompts_left == 0 and {"event": "silence"} not in session.events
    ended = transport.command(loop.run_until_complete(core.answer(session, Silence(2))))
    assert ended == EndCall((SILENCE_GOODBYE,))
    assert {"event": "silence"} in session.events
    assert saids(session) == [OPENING, MESSAGE, REPROMPT, MESSAGE, SILENCE_GOODBYE]
    assert session.hung_up_by_us
    assert said(runtime, session.call_id)[-1] == ("assistant", SILENCE_GOODBYE)


def test_a_silence_on_a_kept_open_call_waits_for_the_agent(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime, keep_open=True)
    session.reprompts_left = 0
    loop.run_until_complete(core.answer(session, Answered(None)))
    assert transport.command(loop.run_until_complete(core.answer(session, Silence(1)))) == Hold(resume=1)
    assert {"event": "silence"} in session.events and not session.hung_up_by_us
    assert [o.kind for o in session.outcomes] == ["no-speech"]


def test_an_opt_out_on_a_kept_open_call_is_an_event(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    runtime.contacts.add("Bob", "+13125550101")
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    heard = Heard(1, "stop calling me", None, "call_core1:gather:1")
    assert transport.command(loop.run_until_complete(core.answer(session, heard))) == EndCall((OPT_OUT_GOODBYE,))
    assert session.events[-2:] == [{"event": "opted-out"}, {"event": "said", "text": OPT_OUT_GOODBYE}]
    assert {"event": "heard", "text": "stop calling me", "confidence": None} in session.events
    assert session.hung_up_by_us


def test_digits_pressed_are_an_event_and_on_record(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    loop.run_until_complete(core.answer(session, Heard(1, "Go ahead", 0.9, "call_core1:gather:1")))
    session.submit(Press("42#"))
    loop.run_until_complete(core.answer(session, ReadyEvent(1)))
    assert {"event": "pressed", "digits": "42#"} in session.events
    assert runtime.store.calls.event_payloads(session.call_id, "digits") == [{"digits": "42#"}]


def test_no_time_left_unsteered_closes_the_call_at_once(runtime, transport, loop) -> None:
    core = conversation(runtime, transport, unsteered=0)  # the clock stands still: exactly none left
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    heard = Heard(1, "Hello?", 0.9, "call_core1:gather:1")
    assert transport.command(loop.run_until_complete(core.answer(session, heard))) == EndCall((CLOSING,))
    assert {"event": "unsteered"} in session.events and session.hung_up_by_us


def test_answered_and_ringing_are_events_and_wake_the_waiting_agent(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime)
    session.status = "queued"
    ringing = StatusChanged(CallStatus.RINGING, 1, None, None, {"CallStatus": "ringing", "SequenceNumber": "1"})
    answered = StatusChanged(CallStatus.IN_PROGRESS, 2, None, None, {"CallStatus": "in-progress", "SequenceNumber": "2"})
    waiting = loop.create_task(session.wait_until(lambda: session.status == "in-progress", 600))
    loop.run_until_complete(core.status(session, ringing))
    assert ("answered", 0) not in session.latency_marked  # ringing is not answered
    loop.run_until_complete(core.status(session, answered))
    settle(loop)
    assert waiting.done() and waiting.result() is True  # woke on the change, not at its timeout
    assert session.events == [{"event": "ringing"}, {"event": "answered"}]
    assert session.status == "in-progress" and ("answered", 0) in session.latency_marked


def test_the_voice_request_marks_the_call_answered_before_any_status_callback(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime)
    loop.run_until_complete(core.answer(session, Answered("human")))
    assert sorted(m for m in session.latency_marked if m[1] == 0) == [("answered", 0), ("first_audio", 0)]
    names = [e["mark"] for e in runtime.store.calls.event_payloads(session.call_id, "latency")]
    assert names == ["answered", "first_audio"]  # on record, in order: the first audio follows the answer


@pytest.mark.parametrize(("mode", "event"), [("hang-up", "machine answered: hanging up"), ("leave-message", "voicemail")])
def test_a_machine_is_an_event_for_the_agent(runtime, transport, loop, mode, event) -> None:
    core = Conversation(CallWriter(runtime.store, runtime.clock), runtime.contacts, runtime.clock,
                        Budgets(hold_seconds=0.05, unsteered_seconds=600, reprompts=1), OPENING, transport,
                        voicemail_mode=mode)
    session = session_for(runtime)
    assert isinstance(transport.command(loop.run_until_complete(core.answer(session, Answered("machine")))), EndCall)
    assert {"event": event} in session.events


def two_lines_waiting(runtime, core, loop):  # type: ignore[no-untyped-def]
    """A kept-open call past its first reply, with two lines of the agent's waiting."""
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    loop.run_until_complete(core.answer(session, Heard(1, "Go ahead", 0.9, "call_core1:gather:1")))
    first, second = Speak("First line.", expect_reply=False), Speak("Second line.", expect_reply=False)
    session.submit(first)
    session.submit(second)
    return session, first, second


def test_a_refused_write_rolls_the_answer_back_and_tells_the_agent(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session, first, second = two_lines_waiting(runtime, core, loop)
    given = set(session.answers)
    runtime.store.query("PRAGMA query_only = ON")  # every write is refused, as on a read-only disk
    try:
        answer = loop.run_until_complete(core.answer(session, ReadyEvent(1)))
    finally:
        runtime.store.query("PRAGMA query_only = OFF")
    assert transport.command(answer) == EndCall((FAILURE_GOODBYE,))
    assert session.failure is not None and session.ended
    assert {"event": "failed", "error": session.failure.message} in session.events
    assert session.hold_number == 1  # the store's, not the failed answer's 2
    assert set(session.answers) == given  # not given: a retry would make it again
    assert first.delivered.is_set() and second.delivered.is_set()  # the call ended: nobody waits on them


class FailingOnce(FakeTransport):
    """A transport whose rendering breaks once (an unexpected error, not the store's)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def render(self, line, command):  # type: ignore[no-untyped-def]
        if self.broken:
            self.broken = False
            raise RuntimeError("the renderer broke")
        return super().render(line, command)


def test_an_answer_that_breaks_is_rolled_back_and_the_retry_delivers_the_same_lines(runtime, loop) -> None:
    transport = FailingOnce()
    core = conversation(runtime, transport)
    session, first, second = two_lines_waiting(runtime, core, loop)
    given = set(session.answers)
    transport.broken = True
    with pytest.raises(RuntimeError):
        loop.run_until_complete(core.answer(session, ReadyEvent(1)))
    assert not first.delivered.is_set() and not session.ended
    assert session.hold_number == 1 and set(session.answers) == given
    retried = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1))))
    assert retried == Say(("First line.",), resume=2)  # the taken line first again, not the second
    assert first.delivered.is_set() and not second.delivered.is_set()
    assert said(runtime, session.call_id)[-1] == ("assistant", "First line.")


def test_a_restore_brings_back_the_reprompts_left_and_the_queued_actions(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime)
    loop.run_until_complete(core.answer(session, Answered(None)))
    again = transport.command(loop.run_until_complete(core.answer(session, Silence(1))))
    assert again == Ask((REPROMPT, MESSAGE), turn=2) and session.reprompts_left == 0
    core._states.queue_action(session.call_id, {"kind": "speak", "text": "Still there?", "expect_reply": False})  # noqa: SLF001
    restarted = CallSession(call_id=session.call_id, token="t0ken", to_number=session.to_number, to_name="Bob",
                            message=MESSAGE, interactive=True, keep_open=False, closing=CLOSING,
                            speech=session.speech, reprompts_left=1, status="in-progress")
    core.restore(restarted)
    assert restarted.reprompts_left == 0 and restarted.gather_number == 2
    action = loop.run_until_complete(restarted.next_action(0.01))
    assert isinstance(action, Speak) and action.text == "Still there?"
    ended = transport.command(loop.run_until_complete(core.answer(restarted, Silence(2))))
    assert ended == EndCall((SILENCE_GOODBYE,))  # no second reprompt after the restart


class BudgetLibrary:
    """An audio library that keeps the budget each line was given and has no audio."""

    def __init__(self) -> None:
        self.budgets: list[float | None] = []

    async def get_or_generate(self, text: str, budget_seconds: float | None = None) -> Fallback:
        self.budgets.append(budget_seconds)
        return Fallback("disabled", "no audio in this test")


def voiced(runtime: Runtime, transport: FakeTransport, library: BudgetLibrary, audio: float) -> Conversation:
    budgets = Budgets(hold_seconds=5, unsteered_seconds=600, reprompts=1, audio_seconds=audio)
    return Conversation(CallWriter(runtime.store, runtime.clock), runtime.contacts, runtime.clock, budgets,
                        OPENING, transport, voicing=Voicing(library, lambda audio: "unused"))  # type: ignore[arg-type]


def test_audio_is_waited_for_no_longer_than_the_answer_has_left(runtime, clock, transport, loop) -> None:
    library = BudgetLibrary()
    core = voiced(runtime, transport, library, audio=100)
    clock.advance(1000)
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    assert library.budgets == [ANSWER_SECONDS, ANSWER_SECONDS]  # the answer's window, not the 100 s budget
    assert ANSWER_SECONDS == 13.5  # Twilio waits 15 s for an answer: 1.5 s left for the write and the network


def test_a_line_that_arrives_after_the_answers_deadline_waits_for_no_audio(runtime, clock, transport, loop) -> None:
    library = BudgetLibrary()
    core = voiced(runtime, transport, library, audio=1.5)
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    loop.run_until_complete(core.answer(session, Heard(1, "Go ahead", 0.9, "call_core1:gather:1")))
    library.budgets.clear()

    def late() -> None:  # the agent's line comes when the hold request's time is spent
        clock.advance(ANSWER_SECONDS + 1)
        session.submit(Speak("Here it is.", expect_reply=False))

    loop.call_later(0.01, late)
    said_late = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1))))
    assert said_late == Say(("Here it is.",), resume=2)
    assert library.budgets == [0.0]


def test_a_hold_request_after_the_call_ended_gets_a_hang_up(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    loop.run_until_complete(core.answer(session, Heard(1, "Go ahead", 0.9, "call_core1:gather:1")))
    done = StatusChanged(CallStatus.COMPLETED, 3, None, 9, {"CallStatus": "completed", "SequenceNumber": "3"})
    loop.run_until_complete(core.status(session, done))
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1)))) == EndCall()
    stale = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1_000))))
    assert stale == EndCall()  # a resume number never given, on an ended call: nothing to hold for
