"""Issue 16 in the conversation core, without HTTP (a fake transport, the manual clock): a
machine reported later moves the call to the voicemail path once; words said while held reach
the agent; one acknowledgement per wait, due after the configured silence."""

from __future__ import annotations

import asyncio

from test_conversation_core import CLOSING, MESSAGE, OPENING, FakeTransport, said, session_for

from twilio_caller.call_status import CallStatus
from twilio_caller.calls import CallWriter
from twilio_caller.conversation import NOTIFY_GOODBYE, OPT_OUT_GOODBYE, Budgets, Conversation
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import CallSession
from twilio_caller.transport.port import Answered, Detected, EndCall, Heard, Hold, Say, StatusChanged
from twilio_caller.transport.port import Ready as ReadyEvent

ACKS = ("Mm-hm, one moment.", "Just a moment.")
MACHINE = {"CallSid": "CA1", "AnsweredBy": "machine_end_beep", "MachineDetectionDuration": "4100"}


def make_core(runtime: Runtime, transport: FakeTransport, steered: list[int], *, acknowledge: float = 0,
              mode: str = "leave-message") -> Conversation:
    async def steer(session: CallSession, resume: int) -> None:
        steered.append(resume)

    budgets = Budgets(hold_seconds=0.05, unsteered_seconds=600, reprompts=1, acknowledge_after_seconds=acknowledge)
    return Conversation(CallWriter(runtime.store, runtime.clock), runtime.contacts, runtime.clock, budgets,
                        OPENING, transport, voicemail_mode=mode, steer=steer, acknowledgements=ACKS)


def record(runtime: Runtime, call_id: str) -> dict:
    found = CallWriter(runtime.store, runtime.clock).get(call_id)
    assert found is not None
    return found


def test_a_machine_reported_later_gets_the_voicemail_answer_once(runtime, transport, loop) -> None:
    steered: list[int] = []
    core = make_core(runtime, transport, steered)
    session = session_for(runtime)
    session.detecting = True
    loop.run_until_complete(core.handle(session, Answered(None)))  # async: greeted at once
    assert loop.run_until_complete(core.handle(session, Detected("machine", MACHINE))) is None
    assert steered == [1]
    voicemail = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1))))
    assert voicemail == EndCall((OPENING, f"I'm calling with a message: {MESSAGE}", NOTIFY_GOODBYE))
    assert len(transport.commands) == 2  # the hold's answer was made once, before the steer
    loop.run_until_complete(core.handle(session, Detected("machine", MACHINE)))  # a replay
    assert steered == [1] and len(transport.commands) == 2
    assert (record(runtime, session.call_id)["answered_by"], record(runtime, session.call_id)["voicemail_left"]) == \
        ("machine", True)


def test_hang_up_mode_and_a_fax_end_without_a_message(runtime, transport, loop) -> None:
    steered: list[int] = []
    core = make_core(runtime, transport, steered, mode="hang-up")
    session = session_for(runtime)
    loop.run_until_complete(core.handle(session, Answered(None)))
    loop.run_until_complete(core.handle(session, Detected("fax", {"AnsweredBy": "fax"})))
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1)))) == EndCall(())
    assert record(runtime, session.call_id)["voicemail_left"] is False


def test_a_person_or_a_late_result_changes_nothing(runtime, transport, loop) -> None:
    steered: list[int] = []
    core = make_core(runtime, transport, steered)
    session = session_for(runtime)
    loop.run_until_complete(core.handle(session, Answered(None)))
    loop.run_until_complete(core.handle(session, Detected("human", {"AnsweredBy": "human"})))
    assert steered == [] and session.hold_number == 0 and len(transport.commands) == 1
    assert record(runtime, session.call_id)["answered_by"] == "human"
    ended = StatusChanged(CallStatus.COMPLETED, 9)
    loop.run_until_complete(core.handle(session, ended))
    loop.run_until_complete(core.handle(session, Detected("machine", MACHINE)))
    assert steered == [] and record(runtime, session.call_id)["answered_by"] == "human"
    amd = runtime.store.query("SELECT status FROM events WHERE call_id = ? AND kind = 'amd'", (session.call_id,))
    assert [row[0] for row in amd] == ["human"]


def test_a_notify_call_waits_for_the_result_before_its_goodbye(runtime, transport, loop) -> None:
    core = make_core(runtime, transport, [])
    session = session_for(runtime)
    session.interactive, session.detecting = False, True
    opened = transport.command(loop.run_until_complete(core.handle(session, Answered(None))) or "")
    assert opened == Say((OPENING, MESSAGE), resume=1)
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1)))) == Hold(2)
    loop.run_until_complete(core.handle(session, Detected("human", {"AnsweredBy": "human"})))
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(2)))) == EndCall((NOTIFY_GOODBYE,))


def test_words_said_while_held_are_a_reply_marked_while_waiting(runtime, transport, loop) -> None:
    core = make_core(runtime, transport, [])
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    loop.run_until_complete(core.answer(session, Heard(1, "Hi", 0.9, "call_core1:gather:1")))
    held = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1, "oh and  bring receipts", 0.8))))
    assert held == Hold(2)
    assert [(o.text, o.while_waiting) for o in session.outcomes] == [("Hi", False), ("oh and bring receipts", True)]
    assert said(runtime, session.call_id)[-1] == ("callee", "oh and bring receipts")
    loop.run_until_complete(core.answer(session, ReadyEvent(1, "oh and  bring receipts", 0.8)))  # a replay
    assert len(session.outcomes) == 2 and said(runtime, session.call_id).count(("callee", "oh and bring receipts")) == 1
    out = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(2, "stop calling me", 0.9))))
    assert out == EndCall((OPT_OUT_GOODBYE,)) and session.opted_out


def test_one_acknowledgement_per_wait_after_the_silence(runtime, transport, loop) -> None:
    core = make_core(runtime, transport, [], acknowledge=2)
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    early = loop.run_until_complete(core.answer(session, Heard(1, "Hi", 0.9, "call_core1:gather:1")))
    assert transport.command(early) == Hold(1)  # 1 s of silence so far (the speech timeout): not yet
    runtime.clock.advance(1.0)
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1)))) == Hold(2, (ACKS[0],))
    runtime.clock.advance(5.0)
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(2)))) == Hold(3)  # once
    loop.run_until_complete(core.answer(session, ReadyEvent(3, "and Friday", 0.9)))  # a new wait
    runtime.clock.advance(1.0)
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(4)))) == Hold(5, (ACKS[1],))
    assert said(runtime, session.call_id).count(("assistant", ACKS[0])) == 1
    assert CLOSING not in [text for _, text in said(runtime, session.call_id)]


def test_a_machine_reported_while_a_request_waits_for_the_agent_does_not_wait_for_it(runtime, transport, loop) -> None:
    steered: list[int] = []

    async def steer(session: CallSession, resume: int) -> None:
        steered.append(resume)

    budgets = Budgets(hold_seconds=3600, unsteered_seconds=7200, reprompts=1)
    core = Conversation(CallWriter(runtime.store, runtime.clock), runtime.contacts, runtime.clock, budgets,
                        OPENING, transport, steer=steer)
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered(None)))

    async def scenario() -> tuple[str, None]:
        held = asyncio.ensure_future(core.answer(session, Heard(1, "Hi there", 0.9, "call_core1:gather:1")))
        while not session.holding:  # the reply's request now waits for the agent (up to an hour)
            await asyncio.sleep(0)
        await core.handle(session, Detected("machine", MACHINE))
        return await held, None

    held, _ = loop.run_until_complete(asyncio.wait_for(scenario(), 30))
    assert transport.command(held) == Hold(2)  # it let go at once, taking no action
    assert steered == [1]  # the voicemail's number was taken first; its answer is on record
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1)))) == EndCall(
        (OPENING, f"I'm calling with a message: {MESSAGE}", NOTIFY_GOODBYE))
    from twilio_caller.call_state import CallStates

    on_record = CallStates(runtime.store, runtime.clock).answer(session.call_id, "hold:1")
    assert on_record is not None and transport.command(on_record) == EndCall(
        (OPENING, f"I'm calling with a message: {MESSAGE}", NOTIFY_GOODBYE))  # a restart serves the same
