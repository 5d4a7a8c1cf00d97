"""The call as the callee hears it, with an agent that thinks between turns.

A simulate-mode server (as bench/turn_overhead.py runs it) places --calls keep_open calls at
once through the real tools; each agent thread waits --think-min..--think-max seconds (an LLM
thinking, real time) after every reply before its next `say`, for --turns turns, then hangs up.
Each callee answers every question and says --holding-lines asides into the silences while it
is held (`speak_while_holding`); an agent handed an aside (`reply.while_waiting`) `wait`s on
for the answer. The config is the product's defaults (async AMD, acknowledgements after 2 s).
The simulator's own record of each call (record.experience, simulated seconds; HTTP and think
time count one to one) gives the figures, one JSON line each on stdout:

* pickup_to_first_audio: answer -> first audio the callee hears
* dead_air: per turn, the callee's end of speech -> the next audio they hear
* lost_words: words the callee said that nothing listened to (total, and per call)
* server_latency_ms: the product's own marks over the run's calls (`call_latency`: p50/p95)

    .venv/bin/python bench/callee_experience.py --calls 4 --turns 3
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchstats import percentiles
from turn_overhead import bench_client, contact_name, hang_up, tool_client


def agent(tool: Any, index: int, turns: int, think: tuple[float, float], errors: list[str]) -> None:
    rng, call_id = random.Random(index), None
    try:
        first = tool("call", to=contact_name(index), message="Quick question about Friday",
                     keep_open=True, interactive=False, wait=True, timeout_seconds=300)
        call_id = first["call_id"]
        for turn in range(turns):
            time.sleep(rng.uniform(*think))
            said = tool("say", call_id=call_id, message=f"Turn {turn}: does that work?", expect_reply=True,
                        timeout_seconds=120)
            while (said.get("reply") or {}).get("while_waiting") and not said["ended"]:
                said = tool("wait", call_id=call_id, timeout_seconds=120)
    except Exception as exc:  # noqa: BLE001 - reported, the other calls go on
        errors.append(f"{contact_name(index)}: {type(exc).__name__}: {exc}")
    finally:
        hang_up(tool, call_id, errors)


def callee(turns: int, holding_lines: int) -> Any:
    from twilio_caller.simulator import CalleeScript
    from twilio_caller.simulator.callee import Speech

    return CalleeScript(replies=tuple(Speech("Okay, that works") for _ in range(turns + 1)),
                        speak_while_holding=tuple(Speech(f"oh and one more thing number {n}")
                                                  for n in range(1, holding_lines + 1)))


def run(calls: int, turns: int, think: tuple[float, float], time_scale: float,
        holding_lines: int) -> tuple[list[Any], list[str], dict[str, Any]]:
    from twilio_caller.runtime import Runtime
    from twilio_caller.server.runner import ServerRunner, ServerThread

    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="twilio-caller-bench-") as directory:
        client = bench_client(Path(directory) / "home", calls)
        home = client.home
        runner = ServerRunner(Runtime(home, environ={}), simulate=True, idle_exit=False, time_scale=time_scale)
        tool = tool_client(client)
        with ServerThread(runner):
            for index in range(1, calls + 1):
                runner.simulator.set_callee(f"+1312555{index:04d}", callee(turns, holding_lines))
            threads = [threading.Thread(target=agent, args=(tool, i, turns, think, errors)) for i in range(1, calls + 1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            records = list(runner.simulator.calls)
            for record in records:
                record.wait(30)
            server_side = tool("call_latency", limit=calls)
    return [record.experience for record in records], errors, server_side


def figure(name: str, values: list[float], **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"figure": name, "samples": len(values)}
    line.update(percentiles(values, "s", (50, 95), 2))
    if values:
        line["max_s"] = round(max(values), 2)
    line.update(extra)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--think-min", type=float, default=2.0, help="agent think time, seconds (default 2)")
    parser.add_argument("--think-max", type=float, default=10.0, help="agent think time, seconds (default 10)")
    parser.add_argument("--time-scale", type=float, default=1000, help="simulator time scale (default 1000)")
    parser.add_argument("--holding-lines", type=int, default=2, help="asides each callee says while held (default 2)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    experiences, errors, server_side = run(args.calls, args.turns, (args.think_min, args.think_max), args.time_scale,
                              args.holding_lines)
    first = [e.pickup_to_first_audio for e in experiences if e.pickup_to_first_audio is not None]
    dead = [gap for e in experiences for gap in e.dead_air]
    lost = [e.lost_words for e in experiences]
    for line in (figure("pickup_to_first_audio", first), figure("dead_air", dead),
                 {"figure": "lost_words", "total": sum(lost), "per_call": lost},
                 {"figure": "server_latency_ms", **server_side["figures"]},
                 {"figure": "run", "calls": args.calls, "turns": args.turns, "errors": errors,
                  "seconds": round(time.perf_counter() - started, 1)}):
        print(json.dumps(line))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
