"""A relay call survives its server: SIGKILLed mid-call, the restarted server takes the call
back onto a new ConversationRelay socket (not Gather), the cut question is asked again, and
the tool that was waiting gets the reply — every turn once."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crashkit import (Person, background, callee_lines, kill, live_home, said_lines, server, stop_background,
                      twilio_served)
from instancekit import free_port
from polling import eventually
from twilio_caller.call_state import HomeLease, home_lease
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime
from twilio_caller.simulator import InteractiveCallee, Simulator
from twilio_caller.transport.twilio import relay

QUESTIONS = {"Hello": "Hi", "And then?": "Second reply", "Anything else?": "Third reply"}


@pytest.fixture
def twilio():
    yield from twilio_served(10.0)


def relay_home(home: Path, simulator: Simulator, api: str) -> Runtime:
    live_home(home, simulator, api).close()
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("conversation: {", "conversation: {engine: relay, "))
    return Runtime(home, environ={})


def engine_on_record(runtime: Runtime, call_id: str) -> str:
    return str(runtime.store.query("SELECT engine FROM calls WHERE id = ?", (call_id,))[0]["engine"])


def answered_again_then_hung_up(runtime: Runtime, call_id: str, second: dict) -> dict:
    """After the restart: the cut question's reply came, the next question is answered, and
    hanging up completes the call; what `hangup` returned."""
    assert second["reply"]["text"] == "Second reply"
    third = invoke("say", {"call_id": call_id, "message": "Anything else?"}, runtime)
    assert third["reply"]["text"] == "Third reply"
    ended = invoke("hangup", {"call_id": call_id}, runtime)
    assert ended["status"] == "completed"
    return ended


def test_a_relay_call_killed_mid_question_goes_on_over_a_new_socket_and_the_tool_gets_the_reply(
        home: Path, twilio) -> None:
    simulator, api = twilio
    runtime = relay_home(home, simulator, api)
    person = Person(QUESTIONS, think_at="And then?")
    simulator.set_callee("+13125550101", InteractiveCallee(person, ring_seconds=0.2))
    first = background(home)
    restarted: list = []
    try:
        placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True}, runtime)
        assert placed["reply"]["text"] == "Hi"
        call_id, sid = placed["call_id"], placed["twilio_sid"]
        assert engine_on_record(runtime, call_id) == "relay"  # what a restart goes on with

        came_back = threading.Event()

        def restart() -> None:  # Twilio asks the <Connect action> after the dropped socket
            restarted.append(server(home))
            came_back.set()

        simulator.chaos.on_next_webhook(lambda url, params: url.endswith("/handoff"), restart, in_flight=False)
        with ThreadPoolExecutor(1) as pool:
            asking = pool.submit(invoke, "say", {"call_id": call_id, "message": "And then?",
                                                 "timeout_seconds": 60}, runtime)
            assert person.thinking.wait(20)
            kill(first.info["pid"])  # the socket drops with the callee mid-answer
            person.release.set()
            assert came_back.wait(30)
            second = asking.result(timeout=90)
        ended = answered_again_then_hung_up(runtime, call_id, second)
        record = simulator.call(sid)
        assert record.wait(10) and record.status == "completed"
        assert callee_lines(ended) == ["Hi", "Second reply", "Third reply"]
        said = said_lines(ended)
        assert said.count("And then?") == 2  # asked, then asked again over the new socket
        assert said.count("Anything else?") == 1 and said.index("And then?") < said.index("Anything else?")
        assert not [request for request in record.requests
                    if "/gather" in request.url or "/hold" in request.url]  # … never onto Gather
    finally:
        person.release.set()
        for running in restarted:
            running.stop()


PUBLIC = "https://calls.example.com"


def fixed_home(home: Path, simulator: Simulator, api: str, port: int) -> Runtime:
    """A relay home whose servers all listen on `port` behind one public URL (a tunnel's with a
    reserved domain): a dropped socket's `<Connect action>` reaches whichever server runs then."""
    relay_home(home, simulator, api).close()
    config = home / "config.yaml"
    config.write_text(config.read_text().replace(
        "webhook: {port: 0}", f"webhook: {{host: 127.0.0.1, port: {port}}}\npublic_url: {PUBLIC}"))
    simulator.chaos.round_robin(PUBLIC, [f"http://127.0.0.1:{port}"])
    return Runtime(home, environ={})


def next_server_listening(home: Path, old_pid: int, port: int) -> None:
    """Until the home's next server (the lease's new holder: the killed one is gone) listens."""
    runtime = Runtime(home, environ={})
    try:
        lease = HomeLease(runtime.store, runtime.clock, home_lease(home))
        assert eventually(lambda: (lease.holder() or {}).get("pid", old_pid) != old_pid and listening(port), 40)
    finally:
        runtime.close()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    except OSError:
        return False
    return True


def test_a_killed_servers_handoff_reaching_the_restarted_server_first_carries_the_call_on_over_relay(
        home: Path, twilio) -> None:
    """The race on real Twilio: the socket drops with the server, Twilio asks the `<Connect
    action>` at once, and the restarted server gets that request before its reconciliation
    has looked at the call. The handoff takes the call back (the question the drop cut is
    asked again over a new socket); reconciliation then finds the call running and leaves it
    alone (no Calls-API update); every turn once; our own `end` still ends the call."""
    simulator, api = twilio
    port = free_port()
    runtime = fixed_home(home, simulator, api, port)
    person = Person(QUESTIONS, think_at="And then?")
    simulator.set_callee("+13125550101", InteractiveCallee(person, ring_seconds=0.2))
    first = background(home)
    reconciled = threading.Event()  # the restarted server's Calls-API fetches wait for it
    try:
        placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True}, runtime)
        call_id, sid = placed["call_id"], placed["twilio_sid"]
        record = simulator.call(sid)
        assert placed["reply"]["text"] == "Hi"
        first_owner = runtime.store.query("SELECT owner FROM call_state WHERE call_id = ?", (call_id,))[0][0]

        simulator.chaos.hold_fetches(reconciled)  # the next server's reconciliation waits
        old_pid = first.info["pid"]
        simulator.chaos.on_next_webhook(  # Twilio asks the action at once; here it reaches the next server
            lambda url, params: url.endswith("/handoff"), lambda: next_server_listening(home, old_pid, port),
            in_flight=False)
        with ThreadPoolExecutor(1) as pool:
            asking = pool.submit(invoke, "say", {"call_id": call_id, "message": "And then?",
                                                 "timeout_seconds": 60}, runtime)
            assert person.thinking.wait(20)
            kill(first.info["pid"])  # the socket drops with the callee mid-answer: the handoff goes at once,
            # while the waiting `say` starts the home's next server (follow.py)
            assert eventually(lambda: any(r.url.endswith("/handoff") and r.status_code for r in record.requests), 45), [
                (r.purpose, r.url.rsplit("/", 1)[-1], r.status_code) for r in record.requests] + record.errors
            reconciled.set()
            person.release.set()
            second = asking.result(timeout=90)
        ended = answered_again_then_hung_up(runtime, call_id, second)
        assert record.wait(10) and record.status == "completed"

        dropped, *rest = [r for r in record.requests if r.url.endswith("/handoff")]
        assert (dropped.params["SessionStatus"], dropped.params["ErrorCode"], dropped.params["CallStatus"]) == (
            "failed", "64105", "in-progress")
        assert [r.params["SessionStatus"] for r in rest] == ["ended"]  # our `end`: the call hangs up
        assert record.updates == []  # the restarted server carried the call on without the Calls API
        assert callee_lines(ended) == ["Hi", "Second reply", "Third reply"]
        said = said_lines(ended)
        assert said.count("And then?") == 2 and said.count("Anything else?") == 1  # asked again once, over relay
        assert relay.HANDOFF_APOLOGY not in said and relay.HANDOFF_APOLOGY not in record.heard_text
        assert not [r for r in record.requests if "/gather" in r.url or "/hold" in r.url]  # never onto Gather
        owner = runtime.store.query("SELECT owner FROM call_state WHERE call_id = ?", (call_id,))[0][0]
        assert owner != first_owner  # the lease moved at the handoff
    finally:
        reconciled.set()
        person.release.set()
        stop_background(home)
