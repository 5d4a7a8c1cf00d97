"""Crash recovery: a server that stops mid-call, and a new one (on a new address) that
reconciles the store with Twilio and takes the live calls back. Twilio here is the
simulator on its own, and the servers run in live mode against it."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from twilio_caller.errors import ServerUnavailableError
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime
from twilio_caller.server.client import ensure_server
from twilio_caller.server.runner import ServerRunner, ServerThread
from twilio_caller.simulator import InteractiveCallee, Simulator, SimulatorThread


class Callee:
    """Answers from the test: the first answer waits until the test releases it, so the
    call is live with no request toward any server open — the moment a crash is survivable."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.answering = threading.Event()
        self.release = threading.Event()

    def __call__(self, heard: str) -> str:
        if not self.answering.is_set():
            self.answering.set()
            self.release.wait(30)
        return self.answers.pop(0) if self.answers else ""


@pytest.fixture
def twilio():
    simulator = Simulator(time_scale=1.0)
    with SimulatorThread(simulator) as running:
        yield simulator, running.base_url


def live_home(home: Path, simulator: Simulator, api: str) -> Runtime:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        'safety: {calling_hours: "00:00-24:00", callee_hours: null}\n'
        "webhook: {port: 0}\n"
        "identity: {assistant_name: Yamani, owner_name: Robert}\n"
        "conversation: {hold_budget_seconds: 0.5, unsteered_limit_seconds: 30}\n"
        f"twilio: {{api_base_url: '{api}', account_sid: {simulator.account_sid},"
        f" auth_token: {simulator.auth_token}, from_number: '+13125550100'}}\n"
    )
    (home / "config.yaml").chmod(0o600)
    runtime = Runtime(home, environ={})
    runtime.contacts.add("Contact1", "312-555-0101")
    return runtime


def server(home: Path) -> ServerThread:
    return ServerThread(ServerRunner(Runtime(home, environ={}), simulate=False, idle_exit=False)).start()


def test_a_call_still_live_is_taken_back_by_the_next_server(home: Path, twilio) -> None:
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    callee = Callee("Hi", "Yes, I'm still here")
    simulator.set_callee("+13125550101", InteractiveCallee(callee, ring_seconds=0.2))
    first = ensure_server(home, simulate=False)  # a background process, as agents get it
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    assert callee.answering.wait(10)
    os.kill(first.info["pid"], signal.SIGKILL)
    os.waitpid(first.info["pid"], 0)  # it is our child: reap it
    second = server(home)  # on a new port: the call is pointed at it
    callee.release.set()
    try:
        again = invoke("say", {"call_id": placed["call_id"], "message": "Sorry, you cut out. Are you there?"}, runtime)
        assert again["reply"]["text"] == "Yes, I'm still here"
        ended = invoke("hangup", {"call_id": placed["call_id"]}, runtime)
        assert ended["status"] == "completed"
        texts = [t["text"] for t in ended["transcript"]]
        assert texts[:2] == ["Hi, this is Yamani, Robert's AI assistant.", "Hello"]
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
    first.stop()
    with pytest.raises(ServerUnavailableError):
        invoke("say", {"call_id": placed["call_id"], "message": "hello?"}, runtime)
    callee.release.set()
    record = simulator.call(placed["twilio_sid"])
    assert record.wait(30)  # Twilio cannot post the answer to the stopped server: the call ends
    second = server(home)
    try:
        status = invoke("call_status", {"call_id": placed["call_id"]}, runtime)
        assert status["ended"] is True and status["status"] == record.status
    finally:
        second.stop()
