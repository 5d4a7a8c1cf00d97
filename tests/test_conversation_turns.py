"""A kept-open call's turns in the conversation core, without HTTP (a fake transport, the manual
clock): what the agent's stream hears of words said while held; the latency marks of a turn, on
record in their order and dated at the end of the callee's speech; which acknowledgement comes
next; and none after the agent has acted; a line of the agent's in another language than the
call's reaches the transport in that language."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from test_conversation_core import OPENING, FakeTransport, session_for

from twilio_caller import latency
from twilio_caller.calls import CallWriter
from twilio_caller.clock import ManualClock
from twilio_caller.conversation import Budgets, Conversation
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import CallSession, Speak
from twilio_caller.transport.port import Answered, Ask, Heard, Hold, Line, Say
from twilio_caller.transport.port import Ready as ReadyEvent

ACKS = ("Mm-hm.", "One moment.", "Still with you.")


def make_core(runtime: Runtime, transport: FakeTransport, *, acknowledge: float = 0) -> Conversation:
    budgets = Budgets(hold_seconds=0, unsteered_seconds=600, reprompts=1, acknowledge_after_seconds=acknowledge)
    return Conversation(CallWriter(runtime.store, runtime.clock), runtime.contacts, runtime.clock, budgets,
                        OPENING, transport, acknowledgements=ACKS)


def replied(runtime: Runtime, core: Conversation, loop: asyncio.AbstractEventLoop) -> CallSession:
    """A kept-open call whose callee has answered the first question ('auto' speech timeout)."""
    session = session_for(runtime, keep_open=True)
    loop.run_until_complete(core.answer(session, Answered("human")))
    loop.run_until_complete(core.answer(session, Heard(1, "Go ahead", 0.9, "call_core1:gather:1")))
    return session


def marks(runtime: Runtime, call_id: str) -> list[dict]:
    return runtime.store.calls.event_payloads(call_id, "latency")


def test_words_said_while_held_reach_the_agents_stream_marked_while_waiting(runtime, transport, loop) -> None:
    core = make_core(runtime, transport)
    session = replied(runtime, core, loop)
    loop.run_until_complete(core.answer(session, ReadyEvent(1, "oh and  bring receipts", 0.8)))
    heard = [e for e in session.events if e.get("event") == "heard"]
    assert heard[-1] == {"event": "heard", "text": "oh and bring receipts", "confidence": 0.8, "while_waiting": True}
    assert "while_waiting" not in heard[0]  # the answer to the question is not an aside


def test_a_turns_latency_marks_are_on_record_in_order_from_the_end_of_speech(runtime, clock: ManualClock,
                                                                             transport, loop) -> None:
    core = make_core(runtime, transport)
    session = replied(runtime, core, loop)
    spoke_until = clock.now() - timedelta(seconds=1)  # 'auto': the result comes about 1 s after the last word
    assert marks(runtime, session.call_id)[2:] == [latency.payload("callee_end", 1, spoke_until)]
    clock.advance(2)
    core.mark(session, "agent_woke", 2)  # no reply began turn 2: a mark out of order is not written
    core.mark(session, "agent_said", 1)  # nor one whose predecessor is missing
    core.mark(session, "agent_woke", 1)
    core.mark(session, "agent_woke", 1)  # once
    core.mark(session, "agent_said", 1)
    session.submit(Speak("Noted.", expect_reply=False))
    loop.run_until_complete(core.answer(session, ReadyEvent(1)))
    on_record = [(m["mark"], m["turn"]) for m in marks(runtime, session.call_id)]
    assert on_record == [("answered", 0), ("first_audio", 0), ("callee_end", 1), ("agent_woke", 1),
                         ("agent_said", 1), ("served", 1)]
    figures = latency.of_call(marks(runtime, session.call_id))
    assert figures["turns"] == [{"turn": 1, "callee_end_to_agent_woke_ms": 3000.0,
                                 "agent_woke_to_agent_said_ms": 0.0, "agent_said_to_served_ms": 0.0}]


def test_the_acknowledgements_take_turns_in_their_order(runtime, clock: ManualClock, transport, loop) -> None:
    core = make_core(runtime, transport, acknowledge=2)
    session = replied(runtime, core, loop)
    clock.advance(1)
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1)))) == Hold(2, (ACKS[0],))
    loop.run_until_complete(core.answer(session, ReadyEvent(2, "and Friday", 0.9)))  # a new wait
    clock.advance(2)
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(3)))) == Hold(4, (ACKS[1],))


def test_no_acknowledgement_follows_a_line_of_the_agents(runtime, clock: ManualClock, transport, loop) -> None:
    core = make_core(runtime, transport, acknowledge=2)
    session = replied(runtime, core, loop)
    session.submit(Speak("Let me check.", expect_reply=False))
    said = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1))))
    assert said == Say(("Let me check.",), resume=2)
    clock.advance(10)  # long past the acknowledgement's delay: the agent has spoken since the callee
    assert transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(2)))) == Hold(3)


def test_a_listening_turn_nobody_asked_for_records_nothing_and_takes_nothing(runtime, transport, loop) -> None:
    core = make_core(runtime, transport)
    session = replied(runtime, core, loop)
    waiting = Speak("Hold on.", expect_reply=False)
    session.submit(waiting)
    stray = transport.command(loop.run_until_complete(core.answer(session, Heard(7, "Hello?", 0.9, "call_core1:gather:7"))))
    assert stray == Hold(session.hold_number)  # steady: the call is pointed at the current resume number
    assert [o.text for o in session.outcomes] == ["Go ahead"] and not waiting.delivered.is_set()
    record = CallWriter(runtime.store, runtime.clock).get(session.call_id)
    assert "Hello?" not in [turn["text"] for turn in record["transcript"]]


def test_a_line_in_another_language_reaches_the_transport_in_it_said_or_asked(runtime, transport, loop) -> None:
    core = make_core(runtime, transport)
    session = replied(runtime, core, loop)
    session.submit(Speak("Un momento, por favor.", expect_reply=False, language="es-MX"))
    said = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(1))))
    assert said == Say((Line("Un momento, por favor.", None, "es-MX"),), resume=2)
    session.submit(Speak("¿Le va bien el viernes?", expect_reply=True, language="es-MX"))
    asked = transport.command(loop.run_until_complete(core.answer(session, ReadyEvent(2))))
    assert asked == Ask((Line("¿Le va bien el viernes?", None, "es-MX"),), turn=2)
