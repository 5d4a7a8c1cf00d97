"""Stopping and cancelling: Ctrl-C on a waiting `call` ends the call at Twilio (ringing →
canceled, answered → the closing line, then hung up) and says how to follow it; `server stop`
names the live calls and needs --force or --hangup; the demo removes its home on SIGHUP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import LiveServer
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime
from twilio_caller.server.client import find_server
from twilio_caller.simulator import InteractiveCallee
from polling import eventually

CLOSING = "Thanks, I'll pass that on. Goodbye."


def cli(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "twilio_caller", *argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def until(condition, timeout: float = 20) -> None:
    assert eventually(condition, timeout), "timed out"


def the_call(server: LiveServer) -> dict:
    rows = server.runtime.store.query("SELECT id, twilio_sid, status FROM calls ORDER BY created_at DESC LIMIT 1")
    return dict(rows[0]) if rows else {}


def interrupt(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def test_ctrl_c_while_ringing_cancels_the_call(live_server) -> None:
    live_server.script("Contact1", ring_seconds=600)  # 12 s at the test's time scale
    process = cli("call", "Contact1", "Hello", "--interactive", "--simulate")
    until(lambda: the_call(live_server).get("twilio_sid")
          and live_server.simulator.call(the_call(live_server)["twilio_sid"]).status == "ringing")
    code, err = interrupt(process)
    call = the_call(live_server)
    assert code == 130
    assert call["id"] in err and f"twilio-caller status {call['id']}" in err
    record = live_server.simulator.call(call["twilio_sid"])
    assert record.wait(10) and record.status == "canceled"
    assert live_server.tool("call_status", call_id=call["id"])["status"] == "canceled"


def test_ctrl_c_during_a_held_turn_says_the_closing_and_hangs_up(live_server) -> None:
    thinking, release = threading.Event(), threading.Event()

    def slow(heard: str) -> str:
        thinking.set()
        release.wait(20)
        return "Too late"

    live_server.simulator.set_callee("+13125550002", InteractiveCallee(slow, ring_seconds=0.2))
    process = cli("call", "Contact2", "Is Friday good?", "--interactive", "--simulate")
    assert thinking.wait(20)
    code, err = interrupt(process)
    release.set()
    call = the_call(live_server)
    assert code == 130 and f"twilio-caller status {call['id']}" in err
    record = live_server.simulator.call(call["twilio_sid"])
    assert record.wait(10) and record.status == "completed"
    assert record.heard_text[-1] == CLOSING
    final = live_server.tool("call_status", call_id=call["id"])
    assert final["ended"] and final["status"] == "completed"
    assert [t["speaker"] for t in final["transcript"]].count("callee") == 0


def test_detach_leaves_the_call_alone(live_server) -> None:
    live_server.script("Contact3", ring_seconds=0.2, replies=[{"say": "Sure"}])
    process = cli("call", "Contact3", "Hello", "--interactive", "--simulate", "--detach")
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    call = the_call(live_server)
    assert call["id"] in out
    final = live_server.tool("wait", call_id=call["id"], until="end", timeout_seconds=20)
    assert final["status"] == "completed"
    assert [t["text"] for t in final["transcript"] if t["speaker"] == "callee"] == ["Sure"]


def test_server_stop_names_live_calls_and_needs_force_or_hangup(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        'safety: {calling_hours: "00:00-24:00", callee_hours: null}\n'
        "webhook: {port: 0}\nconversation: {hold_budget_seconds: 0.5, unsteered_limit_seconds: 60}\n")
    runtime = Runtime(home, environ={})
    runtime.contacts.add("Contact1", "312-555-0101")
    script = home / "callee.yaml"
    script.write_text("ring_seconds: 0.1\nreplies: [{say: Hi}]\n")
    # placed from another process, so the server it starts is not this test's child
    placing = cli("call", "Contact1", "Hello", "--keep-open", "--simulate", "--callee", str(script), "--json")
    out, _ = placing.communicate(timeout=60)
    placed = json.loads(out)
    server = find_server(home)
    assert server is not None
    refused = cli("server", "stop")
    _, err = refused.communicate(timeout=30)
    assert refused.returncode == 2 and placed["call_id"] in err and "--hangup" in err
    assert server.health() is not None
    stopped = cli("server", "stop", "--hangup")
    stopped.communicate(timeout=60)
    assert stopped.returncode == 0 and find_server(home) is None
    final = invoke("call_status", {"call_id": placed["call_id"]}, runtime)
    assert final["ended"] and final["status"] == "completed"
    assert final["transcript"][-1]["speaker"] == "assistant" and final["transcript"][-1]["text"] == CLOSING
    runtime.close()


def test_the_demo_removes_its_home_on_sighup() -> None:
    process = subprocess.Popen([sys.executable, "-m", "twilio_caller", "demo", "--type"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    demo_home = None
    deadline = time.monotonic() + 30
    while demo_home is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        if "Demo home: " in line:
            demo_home = Path(line.split("Demo home: ")[1].split(" (removed")[0])
    assert demo_home is not None and demo_home.exists()
    process.send_signal(signal.SIGHUP)
    process.communicate(timeout=60)
    assert process.returncode != 0
    assert not demo_home.exists()

