"""Asynchronous machine detection in the conversation core, without HTTP (a fake transport, the
manual clock): a notify call's goodbye waits for the result and is said the moment a person is
reported (woken, not timed out); a machine reported during that wait keeps the call on hold for
its voicemail path; the wait ends when the call has gone unsteered too long; a goodbye whose
answer broke is said on the retry. A call taken back after a restart: what detection decided is
on record once, and a voicemail path planned before the restart is the one given after it."""

from __future__ import annotations

import asyncio

import pytest
from test_conversation_core import CLOSING, MESSAGE, OPENING, FakeTransport, session_for
from test_conversation_events import FailingOnce, settle

from twilio_caller.calls import CallWriter
from twilio_caller.clock import ManualClock
from twilio_caller.conversation import NOTIFY_GOODBYE, Budgets, Conversation
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import CallSession
from twilio_caller.transport.port import Answered, Detected, EndCall, Hold, Say
from twilio_caller.transport.port import Ready as ReadyEvent

VOICEMAIL = EndCall((OPENING, f"I'm calling with a message: {MESSAGE}", NOTIFY_GOODBYE))
HUMAN = {"AnsweredBy": "human"}
MACHINE = {"AnsweredBy": "machine_end_beep"}


def make_core(runtime: Runtime, transport: FakeTransport, steered: list[int], *, hold: float) -> Conversation:
    async def steer(session: CallSession, resume: int) -> None:
        steered.append(resume)

    budgets = Budgets(hold_seconds=hold, unsteered_seconds=600, reprompts=1)
    return Conversation(CallWriter(runtime.store, runtime.clock), runtime.contacts, runtime.clock, budgets,
                        OPENING, transport, steer=steer)


def notify_call(runtime: Runtime, core: Conversation, transport: FakeTransport,
                loop: asyncio.AbstractEventLoop) -> CallSession:
    """A notify call answered while asynchronous detection has not reported: the message is
    said, and the goodbye waits (the next hold request, resume 1)."""
    session = session_for(runtime)
    session.interactive, session.detecting = False, True
    session.idle_since = runtime.clock.monotonic()  # as the dialer places it
    opened = transport.command(loop.run_until_complete(core.handle(session, Answered(None))) or "")
    assert opened == Say((OPENING, MESSAGE), resume=1) and session.goodbye_pending
    return session


def amd_events(runtime: Runtime, call_id: str) -> list[dict]:
    return runtime.store.calls.event_payloads(call_id, "amd")


def on_record(runtime: Runtime, transport: FakeTransport, call_id: str, key: str) -> object:
    """The command whose answer the store holds for `key` (what a restarted server serves)."""
    from twilio_caller.call_state import CallStates

    answer = CallStates(runtime.store, runtime.clock).answer(call_id, key)
    assert answer is not None
    return transport.command(answer)


def test_a_person_reported_during_the_wait_hears_the_goodbye_at_once(runtime, transport, loop) -> None:
    core = make_core(runtime, transport, [], hold=3600)  # the wait could last an hour
    session = notify_call(runtime, core, transport, loop)
    held = loop.create_task(core.answer(session, ReadyEvent(1)))
    settle(loop)
    assert not held.done()  # waiting for the result, not for the agent
    loop.run_until_complete(core.handle(session, Detected("human", HUMAN)))
    settle(loop)
    assert held.done()  # woken by the result, a few loop turns later: not at the hour's end
    assert transport.command(held.result()) == EndCall((NOTIFY_GOODBYE,))
    assert session.hung_up_by_us
    assert CallWriter(runtime.store, runtime.clock).get(session.call_id)["answered_by"] == "human"


def test_a_machine_reported_during_the_wait_holds_the_call_for_its_voicemail(runtime, transport, loop) -> None:
    steered: list[int] = []
    core = make_core(runtime, transport, steered, hold=3600)
    session = notify_call(runtime, core, transport, loop)
    held = loop.create_task(core.answer(session, ReadyEvent(1)))
    settle(loop)
    detected = loop.create_task(core.handle(session, Detected("machine", MACHINE)))
    settle(loop)
    assert held.done() and detected.done()
    assert transport.command(held.result()) == Hold(3)  # no goodbye: the voicemail path took resume 2
    assert steered == [2]
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(2)))) == VOICEMAIL
    assert [c for c in transport.commands if isinstance(c, EndCall)] == [VOICEMAIL]  # no goodbye besides


def test_the_goodbye_waits_no_longer_than_a_call_may_go_unsteered(runtime, clock: ManualClock, transport,
                                                                  loop) -> None:
    clock.advance(1000)  # the server has run a while: the call's idle time is not the clock's reading
    core = make_core(runtime, transport, [], hold=0)  # each hold request waits no time at all
    session = notify_call(runtime, core, transport, loop)
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1)))) == Hold(2)
    clock.advance(600)  # exactly the unsteered limit: not past it
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(2)))) == Hold(3)
    clock.advance(0.5)
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(3)))) == \
        EndCall((NOTIFY_GOODBYE,))


def test_a_goodbye_whose_answer_broke_is_the_answer_to_the_retry(runtime, loop) -> None:
    transport = FailingOnce()
    core = make_core(runtime, transport, [], hold=0)
    session = notify_call(runtime, core, transport, loop)
    loop.run_until_complete(core.handle(session, Detected("human", HUMAN)))
    transport.broken = True
    with pytest.raises(RuntimeError):
        loop.run_until_complete(core.answer(session, ReadyEvent(1)))
    retried = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1))))
    assert retried == EndCall((NOTIFY_GOODBYE,))  # not a hold for an agent a notify call never has
    assert CLOSING not in [e.get("text") for e in session.events]


def restarted(runtime: Runtime, core: Conversation, session: CallSession) -> CallSession:
    """The session a new server rebuilds for a live call (the dialer's take-back)."""
    fresh = CallSession(call_id=session.call_id, token="t0ken", to_number=session.to_number, to_name="Bob",
                        message=MESSAGE, interactive=session.interactive, keep_open=session.keep_open,
                        closing=CLOSING, speech=session.speech, reprompts_left=1, status="in-progress")
    core.restore(fresh)
    return fresh


def test_a_take_back_writes_what_the_provider_detected_once(runtime, transport, loop) -> None:
    core = make_core(runtime, transport, [], hold=0)
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered(None)))
    again = restarted(runtime, core, session)
    again.acknowledged = False  # an acknowledgement may have been said in the wait going on
    assert loop.run_until_complete(core.taken_back(again, "human")) is None
    assert again.acknowledged and again.detected_as == "human"
    assert CallWriter(runtime.store, runtime.clock).get(session.call_id)["answered_by"] == "human"
    once_more = restarted(runtime, core, session)  # a second restart: the store's answer stands
    assert loop.run_until_complete(core.taken_back(once_more, "machine")) is None
    assert once_more.detected_as == "human"
    assert amd_events(runtime, session.call_id) == [{"AnsweredBy": "human", "from": "calls-api"}]


def test_a_take_back_after_a_crash_between_its_two_writes_records_the_result_once(runtime, transport,
                                                                                 loop) -> None:
    core = make_core(runtime, transport, [], hold=0)
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered(None)))
    writer = CallWriter(runtime.store, runtime.clock)
    writer.event(session.call_id, "amd", "human", None, {"AnsweredBy": "human", "from": "calls-api"},
                 dedupe_by_content=True)  # written; the server died before the call's answered_by
    assert writer.get(session.call_id)["answered_by"] is None
    assert loop.run_until_complete(core.taken_back(restarted(runtime, core, session), "human")) is None
    assert amd_events(runtime, session.call_id) == [{"AnsweredBy": "human", "from": "calls-api"}]
    assert writer.get(session.call_id)["answered_by"] == "human"


def test_a_voicemail_path_planned_before_a_restart_is_the_one_given_after_it(runtime, transport, loop) -> None:
    steered: list[int] = []
    core = make_core(runtime, transport, steered, hold=0)
    session = session_for(runtime)
    session.detecting = True
    loop.run_until_complete(core.handle(session, Answered(None)))
    loop.run_until_complete(core.handle(session, Detected("machine", MACHINE)))
    assert steered == [1] and on_record(runtime, transport, session.call_id, "hold:1") == VOICEMAIL
    made = len(transport.commands)
    later = make_core(runtime, transport, [], hold=0)  # the server died before Twilio fetched it
    assert loop.run_until_complete(later.taken_back(restarted(runtime, later, session), None)) == 1
    assert len(transport.commands) == made  # the message is not made (nor left) a second time
    assert runtime.store.calls.event_payloads(session.call_id, "voicemail-path") == [{"resume": 1}]


def test_a_machine_known_before_a_crash_gets_its_voicemail_path_made_once_on_take_back(runtime, transport,
                                                                                        loop) -> None:
    core = make_core(runtime, transport, [], hold=0)
    session = session_for(runtime)
    loop.run_until_complete(core.handle(session, Answered(None)))  # asked, turn 1; detection then said
    CallWriter(runtime.store, runtime.clock).advance(session.call_id, "in-progress", answered_by="machine")
    first = restarted(runtime, core, session)  # the server died before it planned the voicemail
    resume = loop.run_until_complete(core.taken_back(first, None))
    assert resume == 1 and on_record(runtime, transport, session.call_id, "hold:1") == VOICEMAIL
    made = len(transport.commands)
    later = make_core(runtime, transport, [], hold=0)  # and the next server died too
    assert loop.run_until_complete(later.taken_back(restarted(runtime, later, session), None)) == resume
    assert len(transport.commands) == made
