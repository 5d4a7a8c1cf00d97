"""Crash recovery: a server that stops mid-call, and a new one (on a new address) that
reconciles the store with Twilio and takes the live calls back. Twilio here is the
simulator on its own, and the servers run in live mode against it."""

from __future__ import annotations

from pathlib import Path

import pytest

from crashkit import Callee, Person, background, kill, live_home, server, twilio_served
from twilio_caller.manifest import invoke
from twilio_caller.simulator import InteractiveCallee


@pytest.fixture
def twilio():
    yield from twilio_served(1.0)


def test_a_call_still_live_is_taken_back_by_the_next_server(home: Path, twilio) -> None:
    """Killed while the callee was answering the first question: the redirect to the next
    server cuts that Gather, so the question is asked again (the reprompt) and answered."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    person = Person({"Hello": "Hi", "Are you there?": "Yes, I'm still here"}, think_at="Hello")
    simulator.set_callee("+13125550101", InteractiveCallee(person, ring_seconds=0.2))
    first = background(home)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    assert person.thinking.wait(10)
    kill(first.info["pid"])
    second = server(home)  # on a new port: the call is pointed at it
    person.release.set()
    try:
        heard = invoke("wait", {"call_id": placed["call_id"], "timeout_seconds": 30}, runtime)
        assert heard["reply"]["text"] == "Hi"
        again = invoke("say", {"call_id": placed["call_id"], "message": "Are you there?"}, runtime)
        assert again["reply"]["text"] == "Yes, I'm still here"
        ended = invoke("hangup", {"call_id": placed["call_id"]}, runtime)
        assert ended["status"] == "completed"
        texts = [t["text"] for t in ended["transcript"]]
        assert texts[:4] == ["Hi, this is Yamani, Robert's AI assistant.", "Hello",
                             "Sorry, I didn't catch that.", "Hello"]
        assert [t["text"] for t in ended["transcript"] if t["speaker"] == "callee"] == [
            "Hi", "Yes, I'm still here"]
    finally:
        second.stop()


def test_calls_that_ended_while_no_server_ran_are_completed(home: Path, twilio) -> None:
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    callee = Callee("Hi")
    simulator.set_callee("+13125550101", InteractiveCallee(callee, ring_seconds=0.2))
    first = server(home)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "interactive": True, "wait": False}, runtime)
    assert callee.answering.wait(10)
    first.stop()  # no server runs while the callee answers (a tool now would start the next one:
    callee.release.set()  # test_crash.py's test_a_tool_started_after_its_server_died_follows_the_call)
    record = simulator.call(placed["twilio_sid"])
    assert record.wait(30)  # Twilio cannot post the answer to the stopped server: the call ends
    second = server(home)
    try:
        status = invoke("call_status", {"call_id": placed["call_id"]}, runtime)
        assert status["ended"] is True and status["status"] == record.status
    finally:
        second.stop()


def test_a_taken_back_call_still_ends_at_its_maximum_duration(home: Path, twilio) -> None:
    """The killed server's max-duration guard died with it: the next server guards the call it
    takes back to the latest moment it was due (placed + ring time + limit + grace: when it was
    answered is not on record), not from the take-back — here against a Twilio that lets calls
    run past TimeLimit."""
    from datetime import datetime, timedelta

    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("callee_hours: null}", "callee_hours: null, max_duration_seconds: 10}"))
    simulator.chaos.ignore_time_limit = True  # only the servers' own guard ends the call
    person = Person({"Hello": "Hi"}, think_at="Hello")
    simulator.set_callee("+13125550101", InteractiveCallee(person, ring_seconds=0.2))
    first = background(home)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    assert person.thinking.wait(10)
    kill(first.info["pid"])
    assert simulator.call(placed["twilio_sid"]).status == "in-progress"  # its guard did not fire
    earlier = datetime.fromisoformat(runtime.store.calls.get(placed["call_id"])["created_at"]) - timedelta(seconds=12 + 30)
    with runtime.store.transaction() as connection:  # as if placed 42 s ago: due (30 s ring) in about 3 s
        connection.execute("UPDATE calls SET created_at = ? WHERE id = ?",
                           (earlier.isoformat(timespec="seconds"), placed["call_id"]))
    second = server(home)
    person.release.set()
    try:
        ended = simulator.wait_for_call(placed["twilio_sid"], 20)
        assert ended.end_reason == "api-hangup"
    finally:
        second.stop()
