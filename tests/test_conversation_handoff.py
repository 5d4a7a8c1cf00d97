"""A relay session handed the call back (Twilio's `<Connect action>`), in the conversation core
without HTTP: after our own end the call just ends; after a dropped socket the callee hears an
apology first (on record); either answer is made once, and a replay — or a restarted server —
gets the very same one."""

from __future__ import annotations

from test_conversation_core import CLOSING, MESSAGE, said, session_for
from test_conversation_events import conversation

from twilio_caller.call_state import CallStates
from twilio_caller.sessions import CallSession
from twilio_caller.transport.port import EndCall

APOLOGY = "Sorry, the line dropped and I have to end this call. Goodbye."


def test_after_our_end_the_hand_off_hangs_up_once(runtime, transport, loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime)
    session.hung_up_by_us = True  # the goodbye went over the socket
    answer = loop.run_until_complete(core.handed_off(session, None))
    assert transport.command(answer) == EndCall()
    assert loop.run_until_complete(core.handed_off(session, None)) == answer and len(transport.commands) == 1
    assert CallStates(runtime.store, runtime.clock).answer(session.call_id, "handoff") == answer


def test_after_a_dropped_socket_the_callee_hears_the_apology_and_a_restart_serves_it_again(runtime, transport,
                                                                                          loop) -> None:
    core = conversation(runtime, transport)
    session = session_for(runtime)
    answer = loop.run_until_complete(core.handed_off(session, APOLOGY))
    assert transport.command(answer) == EndCall((APOLOGY,))
    assert session.hung_up_by_us and said(runtime, session.call_id)[-1] == ("assistant", APOLOGY)
    later = CallSession(call_id=session.call_id, token="t0ken", to_number=session.to_number, to_name="Bob",
                        message=MESSAGE, interactive=True, keep_open=False, closing=CLOSING,
                        speech=session.speech, reprompts_left=1, status="in-progress")
    assert loop.run_until_complete(conversation(runtime, transport).handed_off(later, APOLOGY)) == answer
    assert len(transport.commands) == 1 and said(runtime, session.call_id).count(("assistant", APOLOGY)) == 1
