"""Crashing the server mid-call, for the recovery tests: a home whose servers run in live
mode against a simulated Twilio, SIGKILL of a server in its own process, the next server,
callees that answer from the test, and what a call record's transcript says."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from polling import eventually
from twilio_caller.calls import CallWriter
from twilio_caller.runtime import Runtime
from twilio_caller.server.client import ServerClient, ensure_server, find_server, start_lock
from twilio_caller.server.runner import ServerRunner, ServerThread
from twilio_caller.simulator import Simulator, SimulatorThread


def twilio_served(time_scale: float) -> Iterator[tuple[Simulator, str]]:
    """A `twilio` fixture's body: a simulator served from a thread, and its base URL."""
    simulator = Simulator(time_scale=time_scale)
    with SimulatorThread(simulator) as running:
        yield simulator, running.base_url


class Callee:
    """Answers from the test, in order: the first answer waits until the test releases it,
    so the call is live with no request toward any server open — the moment a crash is
    survivable."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.answering = threading.Event()
        self.release = threading.Event()

    def __call__(self, heard: str) -> str:
        if not self.answering.is_set():
            self.answering.set()
            self.release.wait(30)
        return self.answers.pop(0) if self.answers else ""


class Person:
    """Answers the question it heard last (as a person would: asked again, the same answer),
    from `replies` {question: answer}. With `think_at`, it thinks over that question the
    first time it is asked — `thinking` is set — until the test sets `release`: the call is
    in a Gather, no request toward any server open."""

    def __init__(self, replies: Mapping[str, str], think_at: str | None = None) -> None:
        self.replies = dict(replies)
        self.think_at = think_at
        self.thinking = threading.Event()
        self.release = threading.Event()

    def __call__(self, heard: str) -> str:
        asked = [q for q in self.replies if q in heard]
        if not asked:
            return ""
        question = max(asked, key=heard.rindex)
        if question == self.think_at and not self.thinking.is_set():
            self.thinking.set()
            self.release.wait(30)
        return self.replies[question]


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
    """A server in this process (on a new port: live calls are pointed at it)."""
    return ServerThread(ServerRunner(Runtime(home, environ={}), simulate=False, idle_exit=False)).start()


def background(home: Path) -> ServerClient:
    """A server in its own process, as agents get it."""
    return ensure_server(home, simulate=False)


def kill(pid: int) -> None:
    """SIGKILL, and reap it when it is our child."""
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def stop_background(home: Path) -> None:
    running = find_server(home, check_health=False)
    if running is not None and not running.stop():
        kill(running.info["pid"])


def hold_starts_until(home: Path, done: threading.Event | Any) -> None:
    """Take the start lock now and keep it, in a thread of its own, until `done` is set
    (an Event, or a simulator call record's `finished`)."""
    taken = threading.Event()

    def holder() -> None:
        with start_lock(home):  # a client that needs a new server waits
            taken.set()
            done.wait(30)

    threading.Thread(target=holder, daemon=True).start()
    assert taken.wait(10)


def callee_lines(record: dict[str, Any]) -> list[str]:
    return [t["text"] for t in record["transcript"] if t["speaker"] == "callee"]


def said_lines(record: dict[str, Any]) -> list[str]:
    return [t["text"] for t in record["transcript"] if t["speaker"] == "assistant"]


def gather_post(number: int) -> Any:
    """Matches Twilio's request for Gather `number` carrying the callee's speech."""
    pattern = re.compile(rf"/gather\?n={number}$")
    return lambda url, params: bool(pattern.search(url)) and bool(params.get("SpeechResult"))


def final_status_callback(url: str, params: Mapping[str, str]) -> bool:
    return url.endswith("/status") and params.get("CallStatus") in ("completed", "canceled")


def turn_stored(runtime: Runtime, call_id: str, text: str) -> bool:
    record = CallWriter(runtime.store, runtime.clock).get(call_id)
    return record is not None and text in callee_lines(record)


def wait_for_turn(runtime: Runtime, call_id: str, text: str) -> bool:
    return eventually(lambda: turn_stored(runtime, call_id, text))
