"""`twilio-caller demo`: a whole interactive call, offline, with no account — the simulator,
the webhook and a throw-away demo home, so nothing in the user's real home is touched."""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twilio_caller.invocation import Invocation
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime

DEMO_CONTACT = ("Contact1", "+13125550101", "America/Chicago")
DEMO_MESSAGE = "Robert is running about fifteen minutes late for dinner. Is that alright?"
DEMO_REPLY = "Oh, no problem at all. Tell him we'll wait, and drive safely."
DEMO_CONFIG = """\
# The demo home: calls may be placed at any hour, on the offline simulator only.
safety:
  calling_hours: "00:00-24:00"
  callee_hours: null
webhook:
  port: 0
conversation:
  engine: {engine}
"""


def run_demo(*, typed: bool, show: Callable[[dict[str, Any]], None], engine: str = "gather") -> dict[str, Any]:
    """The demo call on `engine`: Gather (TwiML turns) or relay (ConversationRelay's socket)."""
    from twilio_caller.server.runner import ServerRunner, ServerThread

    home = Path(tempfile.mkdtemp(prefix="twilio-caller-demo-"))
    previous = _hang_up_as_interrupt()
    try:
        (home / "config.yaml").write_text(DEMO_CONFIG.format(engine=engine), encoding="utf-8")
        runtime = Runtime(home, environ={})
        name, number, zone = DEMO_CONTACT
        runtime.contacts.add(name, number, zone, notes="the demo's callee (simulated)")
        runner = ServerRunner(runtime, simulate=True, idle_exit=False,
                              time_scale=1.0 if typed else 4.0, default_callee=_callee(typed))
        _intro(home, typed, engine)
        with ServerThread(runner):
            result = invoke("call", {"to": name, "message": DEMO_MESSAGE, "interactive": True}, runtime,
                            Invocation(simulate=True, progress=show))
            final = invoke("wait", {"call_id": result["call_id"], "until": "end", "timeout_seconds": 60},
                           runtime, Invocation(simulate=True))
            show({"event": final["status"]})
        runtime.close()
        return result
    finally:
        shutil.rmtree(home, ignore_errors=True)  # also on Ctrl-C and SIGHUP (a closed terminal)
        if previous is not None:
            signal.signal(signal.SIGHUP, previous)


def _hang_up_as_interrupt() -> Any:
    """SIGHUP (the terminal closed) unwinds like Ctrl-C, so the throw-away home is removed.
    Returns the handler to restore (None off the main thread, where signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGHUP, interrupt)


def _callee(typed: bool) -> Any:
    from twilio_caller.simulator import CalleeScript, InteractiveCallee, Speech

    if typed:
        return InteractiveCallee(responder=_ask_the_person)
    return CalleeScript(ring_seconds=2, replies=(Speech(DEMO_REPLY, 0.93),))


def _ask_the_person(heard: str) -> str:
    print(f"\n[you are the callee; you heard: {heard!r}]", file=sys.stderr)
    print("callee> ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip()


def _intro(home: Path, typed: bool, engine: str) -> None:
    print(
        f"twilio-caller demo: an interactive call ({engine} engine) on the offline Twilio simulator (no account,\n"
        f"nothing dialled). Demo home: {home} (removed afterwards). Its calling hours are\n"
        "open all day, so the demo may call now; your own home keeps the real rules.\n"
        + ("You play the callee: type what they say and press Enter.\n" if typed else ""),
        file=sys.stderr,
    )
