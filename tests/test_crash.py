"""A live call survives the server: SIGKILLed servers in their own processes, a restarted
one that continues every live call where it was, ghost calls that are closed, two servers
that never share a home."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from test_recovery import Callee, live_home, server
from twilio_caller.errors import ServerUnavailableError
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime
from twilio_caller.server.client import ensure_server, find_server
from twilio_caller.server.runfile import run_file
from twilio_caller.simulator import InteractiveCallee, Simulator, SimulatorThread

GHOSTS = 3


@pytest.fixture
def twilio():
    simulator = Simulator(time_scale=1.0)
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
    """Simulate mode: the simulator dies with its server, so the next Twilio does not know
    the call (20404). Three kills used to leave three calls live forever and refuse the next."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        'safety: {calling_hours: "00:00-24:00", callee_hours: null, max_concurrent_calls: 3,'
        " min_seconds_between_calls_to_contact: 0}\n"
        "webhook: {port: 0}\n"
        "conversation: {hold_budget_seconds: 0.5, unsteered_limit_seconds: 60}\n"
    )
    runtime = Runtime(home, environ={})
    runtime.contacts.add("Contact1", "312-555-0101")
    runtime.simulate = True
    runtime.callee = {"ring_seconds": 0.1, "greeting_seconds": 0.1, "replies": [{"say": "Hi"}]}
    ghosts = []
    for _ in range(GHOSTS):
        placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True}, runtime)
        assert placed["status"] == "in-progress"
        ghosts.append(placed["call_id"])
        running = find_server(home)
        assert running is not None
        kill(running.info["pid"])
    changed = invoke("reconcile_calls", {}, runtime)["changed"]
    fresh = invoke("call", {"to": "Contact1", "message": "Hello again", "keep_open": True}, runtime)
    assert fresh["reply"] is not None
    closed = {change["call_id"]: change for change in changed}
    for call_id in ghosts:
        record = invoke("call_status", {"call_id": call_id}, runtime)
        assert record["ended"] is True and record["end_reason"] == "unknown"
        assert record["status"] == "completed"
    assert ghosts[-1] in closed and closed[ghosts[-1]]["reason"] == "unknown"
    assert invoke("safety_rules", {}, runtime)["today"]["live_calls"] == 1
    live = [c["call_id"] for c in invoke("list_calls", {}, runtime)["calls"] if not c["ended"]]
    assert live == [fresh["call_id"]]
    invoke("hangup", {"call_id": fresh["call_id"]}, runtime)
    last = find_server(home)
    assert last is not None
    kill(last.info["pid"])
    runtime.close()


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
