"""A live call survives the server: SIGKILLed servers in their own processes, a restarted
one that continues every live call where it was, ghost calls that are closed, two servers
that never share a home."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conftest import LiveServer
from test_recovery import Callee, live_home, server
from twilio_caller.errors import ServerUnavailableError
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime
from twilio_caller.server.client import ensure_server
from twilio_caller.server.runfile import run_file
from twilio_caller.simulator import InteractiveCallee, Simulator, SimulatorThread

GHOSTS = 3


@pytest.fixture
def twilio():
    simulator = Simulator(time_scale=10.0)
    with SimulatorThread(simulator) as running:
        yield simulator, running.base_url


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)  # our child: reap it


def callee_lines(record: dict) -> list[str]:
    return [t["text"] for t in record["transcript"] if t["speaker"] == "callee"]


def test_a_restarted_server_continues_the_gather_sequence(home: Path, twilio) -> None:
    """The reported bug: after a restart the Gather counter began at 1 again, and the next
    reply was dropped as a duplicate of the first while the agent was told it."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    responder = Callee("Hi", "Second reply", "Third reply", "Fourth reply")
    simulator.set_callee("+13125550101", InteractiveCallee(responder, ring_seconds=0.2))
    first = ensure_server(home, simulate=False)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    callee = simulator.call(placed["twilio_sid"])
    assert responder.answering.wait(10)
    responder.release.set()
    assert invoke("wait", {"call_id": placed["call_id"]}, runtime)["reply"]["text"] == "Hi"
    second = invoke("say", {"call_id": placed["call_id"], "message": "And then?"}, runtime)
    assert second["reply"]["text"] == "Second reply"
    kill(first.info["pid"])
    restarted = server(home)
    try:
        third = invoke("say", {"call_id": placed["call_id"], "message": "Anything else?"}, runtime)
        assert third["reply"]["text"] == "Third reply"
        assert callee_lines(third) == ["Hi", "Second reply", "Third reply"]
        status = invoke("call_status", {"call_id": placed["call_id"]}, runtime)
        assert status["reply"]["text"] == "Third reply"
        ended = invoke("hangup", {"call_id": placed["call_id"]}, runtime)
        assert ended["status"] == "completed"
        assert callee.wait(10) and callee.status == "completed"
        said = [t["text"] for t in ended["transcript"] if t["speaker"] == "assistant"]
        assert said.count("And then?") == 1 and said.count("Anything else?") == 1
    finally:
        restarted.stop()


def test_ghost_calls_are_closed_and_block_nothing(home: Path) -> None:
    """Simulate mode: the simulator stops with its server, so the next Twilio does not know
    the call (20404). Three stopped servers used to leave three calls live forever and the
    next call refused (`concurrency`)."""
    site = LiveServer(home, time_scale=50, hold=0.3, unsteered=60)
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("max_concurrent_calls: 1000", f"max_concurrent_calls: {GHOSTS}"))
    ghosts = []
    for _ in range(GHOSTS):
        restart(site)
        site.script("Contact1", replies=[{"say": "Hi"}])
        ghosts.append(site.tool("call", to="Contact1", message="Hello", keep_open=True)["call_id"])
        site.thread.stop()  # the call stays live in the store; its Twilio is gone
    restart(site)
    try:
        changed = site.tool("reconcile_calls")["changed"]  # this start-up's report: the last ghost
        assert [(change["call_id"], change["reason"]) for change in changed] == [(ghosts[-1], "unknown")]
        assert site.tool("reconcile_calls")["changed"] == []  # nothing left to change
        site.script("Contact1", replies=[{"say": "Hello to you"}])
        fresh = site.tool("call", to="Contact1", message="Hello again", keep_open=True)
        assert fresh["reply"]["text"] == "Hello to you"
        for call_id in ghosts:
            record = site.tool("call_status", call_id=call_id)
            assert record["ended"] is True and record["status"] == "completed"
            assert record["end_reason"] == "unknown"
        assert site.tool("safety_rules")["today"]["live_calls"] == 1
        live = [c["call_id"] for c in site.tool("list_calls")["calls"] if not c["ended"]]
        assert live == [fresh["call_id"]]
        site.tool("hangup", call_id=fresh["call_id"])
    finally:
        site.thread.stop()
        site.runtime.close()


def restart(site: LiveServer) -> None:
    """A new server (and with it a new simulated Twilio) on the same home."""
    from twilio_caller.server.runner import ServerRunner, ServerThread

    site.runner = ServerRunner(Runtime(site.runtime.home, environ={}), simulate=True, idle_exit=False,
                               time_scale=50)
    site.thread = ServerThread(site.runner).start()


def test_a_server_holding_the_home_is_never_doubled(home: Path, twilio) -> None:
    """With the run file deleted under a live server, a client does not start a second one
    that would take the first one's calls: it says so (exit 7)."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    responder = Callee("Hi", "Yes")
    responder.release.set()
    simulator.set_callee("+13125550101", InteractiveCallee(responder, ring_seconds=0.2))
    first = ensure_server(home, simulate=False)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True}, runtime)
    run_file(home).unlink()
    with pytest.raises(ServerUnavailableError) as refused:
        ensure_server(home, simulate=False)
    assert refused.value.exit_code == 7 and str(first.info["pid"]) in refused.value.message
    with pytest.raises(ServerUnavailableError):
        server(home)  # a server started directly does not take the home either
    assert first.health() is not None
    reply = first.invoke("say", {"call_id": placed["call_id"], "message": "Still there?", "expect_reply": True,
                                 "timeout_seconds": 20}, wait_seconds=20)
    assert reply["reply"]["text"] == "Yes"
    assert callee_lines(reply) == ["Hi", "Yes"]
    first.invoke("hangup", {"call_id": placed["call_id"]}, wait_seconds=20)
    kill(first.info["pid"])


def test_a_call_past_its_maximum_duration_is_ended_whatever_twilio_says(home: Path, twilio) -> None:
    """Nothing stays in progress past ring time + max duration + grace: the server that finds
    such a call hangs it up at Twilio and closes the record (reason max-duration)."""
    from datetime import timedelta

    from twilio_caller.clock import ManualClock, SystemClock
    from twilio_caller.server.runner import ServerRunner, ServerThread

    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    responder = Callee("Hi")
    simulator.set_callee("+13125550101", InteractiveCallee(responder, ring_seconds=0.2))
    first = server(home)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    assert responder.answering.wait(10)  # live, the callee thinking, no request open
    first.stop()
    later = ManualClock(SystemClock().now() + timedelta(hours=3))
    second = ServerThread(ServerRunner(Runtime(home, environ={}, clock=later), simulate=False,
                                       idle_exit=False)).start()
    responder.release.set()
    try:
        record = simulator.call(placed["twilio_sid"])
        assert record.wait(10) and record.status == "completed"
        final = invoke("call_status", {"call_id": placed["call_id"]}, runtime)
        assert final["ended"] and final["status"] == "completed" and final["end_reason"] == "max-duration"
    finally:
        second.stop()


def test_a_call_killed_while_ringing_is_answered_by_the_next_server(home: Path, twilio) -> None:
    """Kill point "while ringing": the next server points the ringing call at itself; the
    opening is said once, the reply recorded once, the call ends completed."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    responder = Callee("Hi there")
    responder.release.set()
    simulator.set_callee("+13125550101", InteractiveCallee(responder, ring_seconds=25))  # 2.5 s here, under the ring timeout
    first = ensure_server(home, simulate=False)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "interactive": True, "wait": False}, runtime)
    record = simulator.call(placed["twilio_sid"])
    assert record.status in ("queued", "ringing")
    kill(first.info["pid"])
    second = server(home)
    try:
        final = invoke("wait", {"call_id": placed["call_id"], "until": "end", "timeout_seconds": 30}, runtime)
        assert final["status"] == "completed" and record.status == "completed"
        texts = [t["text"] for t in final["transcript"]]
        assert texts.count("Hi, this is Yamani, Robert's AI assistant.") == 1
        assert callee_lines(final) == ["Hi there"]
        assert texts[-1] == "Thanks, I'll pass that on. Goodbye."
    finally:
        second.stop()
