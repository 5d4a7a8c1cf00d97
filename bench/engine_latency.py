"""Per engine (Gather, ConversationRelay), how quickly the agent is heard and hears back.

Two figures per engine and concurrency level, from per-turn samples (milliseconds, wall clock):

* text_to_first_audio: the agent calls `say` → the simulated callee starts hearing that text
  (Gather: the <Say> of the TwiML answering the held request; relay: the `text` turn on the
  socket).
* speech_end_to_tool_wake: the callee's last word → the agent's waiting `say` returns with the
  reply (Gather: the speech timeout, then the POST /gather; relay: the final `prompt`).

A simulate-mode server (ServerRunner in a ServerThread, as tests/conftest.py does) runs in
this process with a temporary home per level; N keep_open calls are placed from N threads and
each runs --turns say → reply turns, then hangs up. --time-scale 1 (the default) keeps call
time real, so a speech timeout costs what it costs on a real call. Timestamps come from a thin
wrapper this script puts around the simulator's `_hear` and `_callee_says` (this process
only; the package is not changed). Figures, never pass/fail: one JSON line per figure.

    .venv/bin/python bench/engine_latency.py --calls 1,50,200 --turns 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchhome import config_for
from benchstats import percentiles
from turn_overhead import contact_name, hang_up, tool_client


class Probe:
    """Wall-clock moments of what each simulated callee heard and finished saying."""

    def __init__(self, time_scale: float) -> None:
        self._scale = time_scale
        self._lock = threading.Lock()
        self.heard: dict[str, list[tuple[float, str]]] = {}
        self.speech_ends: dict[str, float] = {}

    def hear(self, sid: str, text: str) -> None:
        with self._lock:
            self.heard.setdefault(sid, []).append((time.perf_counter(), text))

    def says(self, text: str, seconds: float | None) -> None:
        with self._lock:
            self.speech_ends[text] = time.perf_counter() + (seconds or 0.0) / self._scale

    def first_heard(self, sid: str, text: str, after: float) -> float | None:
        with self._lock:
            return next((at for at, heard in self.heard.get(sid, []) if at >= after and text in heard), None)


@contextmanager
def probed(probe: Probe) -> Iterator[None]:
    from twilio_caller.simulator.engine import CallEngine

    hear, says = CallEngine._hear, CallEngine._callee_says

    def timed_hear(self: CallEngine, kind: str, text: str, *heard_as: Any) -> None:  # voice, language
        probe.hear(self.record.sid, text)
        hear(self, kind, text, *heard_as)

    def timed_says(self: CallEngine, kind: str, text: str, seconds: float | None = None, **options: Any) -> None:
        probe.says(text, seconds)
        says(self, kind, text, seconds, **options)

    CallEngine._hear, CallEngine._callee_says = timed_hear, timed_says  # type: ignore[method-assign]
    try:
        yield
    finally:
        CallEngine._hear, CallEngine._callee_says = hear, says  # type: ignore[method-assign]


def agent(tool: Any, probe: Probe, index: int, turns: int, samples: dict[str, list[float]],
          errors: list[str]) -> None:
    call_id = None
    try:
        first = tool("call", to=contact_name(index), message="Quick question", keep_open=True, timeout_seconds=300)
        call_id, sid = first["call_id"], first["twilio_sid"]
        for turn in range(turns):
            text = f"Question {turn} for caller {index}."
            asked = time.perf_counter()
            said = tool("say", call_id=call_id, message=text, expect_reply=True, timeout_seconds=120)
            woke = time.perf_counter()
            heard = probe.first_heard(sid, text, asked)
            reply = (said.get("reply") or {}).get("text")
            if heard is not None:
                samples["text_to_first_audio"].append((heard - asked) * 1000)
            if reply in probe.speech_ends:
                samples["speech_end_to_tool_wake"].append((woke - probe.speech_ends[reply]) * 1000)
    except Exception as exc:  # noqa: BLE001 - reported, the other calls go on
        errors.append(f"{contact_name(index)}: {type(exc).__name__}: {exc}")
    finally:
        hang_up(tool, call_id, errors)


def run_level(engine: str, calls: int, turns: int, time_scale: float) -> tuple[dict[str, list[float]], list[str]]:
    from twilio_caller.invocation import SIMULATE_ENV
    from twilio_caller.runtime import Runtime
    from twilio_caller.server.runner import ServerRunner, ServerThread
    from twilio_caller.simulator import CalleeScript
    from twilio_caller.simulator.callee import Speech

    samples: dict[str, list[float]] = {"text_to_first_audio": [], "speech_end_to_tool_wake": []}
    errors: list[str] = []
    probe = Probe(time_scale)
    with tempfile.TemporaryDirectory(prefix="twilio-caller-bench-") as directory, probed(probe):
        home = Path(directory) / "home"
        home.mkdir()
        config = config_for(max(calls, 3)).replace("conversation:\n", f"conversation:\n  engine: {engine}\n")
        (home / "config.yaml").write_text(config)
        client = Runtime(home, environ={SIMULATE_ENV: "1"})
        runner = ServerRunner(Runtime(home, environ={}), simulate=True, idle_exit=False, time_scale=time_scale)
        tool = tool_client(client)
        with ServerThread(runner):
            for index in range(1, calls + 1):
                number = f"+1312555{index:04d}"
                client.contacts.add(contact_name(index), number, "America/Chicago")
                replies = tuple(Speech(f"Reply {turn} from callee {index}") for turn in range(-1, turns))
                runner.simulator.set_callee(number, CalleeScript(ring_seconds=0.5, replies=replies))
            threads = [threading.Thread(target=agent, args=(tool, probe, i, turns, samples, errors))
                       for i in range(1, calls + 1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        client.close()
    return samples, errors


def figure(name: str, engine: str, calls: int, values: list[float]) -> dict[str, Any]:
    line: dict[str, Any] = {"figure": name, "engine": engine, "calls": calls, "samples": len(values)}
    line.update(percentiles(values, "ms", (50, 95, 99), 1))
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1,50,200", help="concurrency levels (default 1,50,200)")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--engines", default="gather,relay")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulator time scale (default 1: real)")
    args = parser.parse_args(argv)
    failed = False
    for calls in (int(level) for level in args.calls.split(",")):
        for engine in args.engines.split(","):
            started = time.perf_counter()
            samples, errors = run_level(engine, calls, args.turns, args.time_scale)
            for name, values in samples.items():
                print(json.dumps(figure(name, engine, calls, values)), flush=True)
            print(json.dumps({"figure": "run", "engine": engine, "calls": calls, "errors": errors[:5],
                              "error_count": len(errors), "seconds": round(time.perf_counter() - started, 1)}),
                  flush=True)
            failed = failed or bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
