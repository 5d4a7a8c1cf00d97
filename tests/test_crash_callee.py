"""Issue 16, durable: what machine detection decided survives the server. A server SIGKILLed
while a call is held, whose detection result never reached it (the asynchronous callback goes
to the URL the call was created with), learns it from Twilio's Calls API on take-back: a
machine gets the voicemail path, and the message is left once."""

from __future__ import annotations

from pathlib import Path
import threading

from crashkit import background, kill, live_home, said_lines, server
from polling import eventually
from twilio_caller.calls import CallWriter
from twilio_caller.dialer import RECOVERED_GOODBYE
from twilio_caller.server.runner import ServerThread
from twilio_caller.simulator import CalleeScript
from test_crash import crash, twilio  # noqa: F401 - the simulator fixture
from twilio_caller.manifest import invoke
from twilio_caller.simulator import InteractiveCallee

VOICEMAIL_LINE = "I'm calling with a message: Call Robert back about Friday"


def test_a_take_back_learns_a_machine_from_the_calls_api_and_leaves_the_message_once(
        home: Path, twilio) -> None:  # noqa: F811
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    with (home / "config.yaml").open("a") as config:
        config.write("voicemail: {detection: 'off'}\n")  # no result reaches any server by callback
    simulator.set_callee("+13125550101", InteractiveCallee(lambda heard: "", ring_seconds=0.2))
    first = background(home)
    placed = invoke("call", {"to": "Contact1", "message": "Call Robert back about Friday",
                             "keep_open": True, "wait": False}, runtime)
    call_id, sid = placed["call_id"], placed["twilio_sid"]
    assert invoke("wait", {"call_id": call_id, "timeout_seconds": 20}, runtime)["status"] == "in-progress"
    simulator.call(sid).answered_by = "machine_end_beep"  # decided; its callback went nowhere
    restarted = crash(home, simulator, first.info["pid"], ringing=False, sid=sid)
    try:
        ended = invoke("wait", {"call_id": call_id, "until": "end", "timeout_seconds": 30}, runtime)
        assert ended["ended"] and ended["answered_by"] == "machine" and ended["voicemail_left"] is True
        assert said_lines(ended).count(VOICEMAIL_LINE) == 1
        events = runtime.store.query("SELECT status FROM events WHERE call_id = ? AND kind = 'amd'", (call_id,))
        assert [row[0] for row in events] == ["machine"]
        assert [u.text for u in simulator.call(sid).heard].count(VOICEMAIL_LINE) == 1
    finally:
        restarted.stop()


def test_a_server_killed_after_a_machine_result_leaves_the_message_once_after_the_restart(
        home: Path, twilio) -> None:  # noqa: F811
    """Asynchronous detection reported a machine; the server wrote the voicemail path and
    moved the call to it, and died before Twilio fetched it. The next server takes the call
    back onto that same answer: no "I have to go" goodbye, the message is left once."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    simulator.set_callee("+13125550101", CalleeScript(answer="machine", greeting_seconds=8))
    first = background(home)
    restarted: list[ServerThread] = []
    moved = threading.Event()

    def die() -> None:
        kill(first.info["pid"])
        restarted.append(server(home))
        moved.set()

    placed = invoke("call", {"to": "Contact1", "message": "Call Robert back about Friday", "wait": False},
                    runtime)
    call_id, sid = placed["call_id"], placed["twilio_sid"]
    record = simulator.call(sid)
    simulator.chaos.on_next_webhook(
        lambda url, params: "/hold?n=" in url and bool(runtime.store.calls.event_payloads(call_id, "voicemail-path")),
        die, in_flight=False)
    try:
        assert moved.wait(30)
        ended = invoke("wait", {"call_id": call_id, "until": "end", "timeout_seconds": 30}, runtime)
        assert ended["ended"] and ended["answered_by"] == "machine" and ended["voicemail_left"] is True
        assert said_lines(ended).count(VOICEMAIL_LINE) == 1
        assert RECOVERED_GOODBYE not in said_lines(ended)
        assert [u.text for u in record.heard].count(VOICEMAIL_LINE) == 1  # played once, to the machine
        events = runtime.store.query("SELECT status FROM events WHERE call_id = ? AND kind = 'amd'", (call_id,))
        assert [row[0] for row in events] == ["machine"]
    finally:
        for running in restarted:
            running.stop()


def test_a_server_killed_after_an_acknowledgement_says_no_second_one_in_that_wait(
        home: Path, twilio) -> None:  # noqa: F811
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    with (home / "config.yaml").open("a") as config:
        config.write("voicemail: {detection: 'off'}\n")
    text = (home / "config.yaml").read_text().replace(
        "conversation: {hold_budget_seconds: 0.5,",
        "conversation: {acknowledge_after_seconds: 0.3, acknowledgements: ['Mm-hm, one moment.'],"
        " hold_budget_seconds: 0.5,")
    (home / "config.yaml").write_text(text)
    simulator.set_callee("+13125550101", InteractiveCallee(lambda heard: "Hi" if "Hello" in heard else "",
                                                           ring_seconds=0.2))
    first = background(home)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    call_id, sid = placed["call_id"], placed["twilio_sid"]
    assert eventually(lambda: "Mm-hm, one moment." in said_lines(CallWriter(runtime.store, runtime.clock).get(call_id)))
    restarted = crash(home, simulator, first.info["pid"], ringing=False, sid=sid)
    try:
        later = simulator.call(sid)
        assert eventually(lambda: sum("/hold?n=" in r.url for r in later.requests) >= 4)  # held on, past the restart
        ended = invoke("hangup", {"call_id": call_id}, runtime)
        assert said_lines(ended).count("Mm-hm, one moment.") == 1
        assert [u.text for u in later.heard].count("Mm-hm, one moment.") == 1
    finally:
        restarted.stop()
