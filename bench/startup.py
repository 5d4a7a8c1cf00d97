"""Start-up wall time of the CLI, hyperfine-style: each command run --runs times (after
--warmup runs) as a fresh `python -m twilio_caller` process; min, p50, p95 and max in ms,
one JSON line per command. Figures, never pass/fail.

startup_call_to_create: from the start of `call Contact1 hi --simulate --no-wait --json`
(just before the process is spawned) to the Calls API create request reaching the
simulator's handler, with a simulate-mode server already running (a ServerRunner in a
ServerThread in this process, found through run/server.json as any background server is;
the simulator's create handler is wrapped to timestamp the request). startup_call_no_wait
is the same command's whole wall time.

    .venv/bin/python bench/startup.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchstats import percentiles

CONFIG = """\
safety:
  calling_hours: "00:00-24:00"
  callee_hours: null
  max_calls_per_day: 100000
  max_calls_per_contact_per_day: 100000
  min_seconds_between_calls_to_contact: 0
webhook:
  port: 0
"""


def prepare_home(home: Path, env: dict[str, str]) -> None:
    """A home with an all-day calling window and the contact Contact1."""
    home.mkdir(parents=True)
    (home / "config.yaml").write_text(CONFIG)
    subprocess.run(
        [sys.executable, "-m", "twilio_caller", "add", "+13125550101", "Contact1",
         "--timezone", "America/Chicago", "--json"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )


def wall_times(command: list[str], env: dict[str, str], runs: int, warmup: int,
               on_run: Callable[[int, float], object] | None = None) -> list[float]:
    times: list[float] = []
    for run in range(warmup + runs):
        began = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
        if on_run is not None:
            on_run(run, began)
        if run >= warmup:
            times.append(elapsed)
    return times


@contextmanager
def timed_creates(arrivals: list[float]) -> Iterator[None]:
    """Wrap the simulator's Calls API create handler: append perf_counter() as each request arrives."""
    from twilio_caller.simulator import api

    original = api._CallsApi.create

    async def create(self: Any, request: Any) -> Any:
        arrivals.append(time.perf_counter())
        return await original(self, request)

    api._CallsApi.create = create  # type: ignore[method-assign]
    try:
        yield
    finally:
        api._CallsApi.create = original  # type: ignore[method-assign]


def call_to_create(command: list[str], home: Path, env: dict[str, str], runs: int,
                   warmup: int) -> tuple[list[float], list[float]]:
    """Per run: spawn → create request at the simulator, and the command's wall time (seconds)."""
    from twilio_caller.runtime import Runtime
    from twilio_caller.server.runner import ServerRunner, ServerThread

    arrivals: list[float] = []
    to_create: list[float] = []
    with timed_creates(arrivals), ServerThread(ServerRunner(Runtime(home, environ={}), simulate=True,
                                                            idle_exit=False, time_scale=1000)):
        walls = wall_times(command, env, runs, warmup, on_run=lambda run, began: (
            to_create.append(arrivals[-1] - began) if run >= warmup and arrivals and arrivals[-1] > began else None))
    if len(to_create) != runs:
        raise SystemExit(f"{len(to_create)} of {runs} runs reached the simulator")
    return to_create, walls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="twilio-caller-bench-") as directory:
        home = Path(directory) / "home"
        env = {key: value for key, value in os.environ.items() if not key.startswith("TWILIO")}
        env.update({"TWILIO_CALLER_HOME": str(home), "HOME": directory})
        prepare_home(home, env)
        cli = [sys.executable, "-m", "twilio_caller"]
        commands = {
            "help": [*cli, "--help"],
            "dry_run": [*cli, "call", "Contact1", "hi", "--dry-run", "--json"],
        }
        figures = {name: wall_times(command, env, args.runs, args.warmup) for name, command in commands.items()}
        call = [*cli, "call", "Contact1", "hi", "--simulate", "--no-wait", "--json"]
        figures["call_to_create"], figures["call_no_wait"] = call_to_create(call, home, env, args.runs, args.warmup)
        commands.update(call_to_create=call, call_no_wait=call)
        for name, seconds in figures.items():
            ms = [t * 1000 for t in seconds]
            print(json.dumps({
                "figure": f"startup_{name}", "command": " ".join(["python", *commands[name][1:]]),
                "min_ms": round(min(ms), 1), **percentiles(ms, "ms", (50, 95), 1),
                "max_ms": round(max(ms), 1), "runs": len(ms),
            }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
