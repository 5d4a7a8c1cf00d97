"""Start-up wall time of the CLI, hyperfine-style: each command run --runs times (after
--warmup runs) as a fresh `python -m twilio_caller` process; min, p50, p95 and max in ms,
one JSON line per command. Figures, never pass/fail.

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
from pathlib import Path

CONFIG = """\
safety:
  calling_hours: "00:00-24:00"
  callee_hours: null
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


def wall_times(command: list[str], env: dict[str, str], runs: int, warmup: int) -> list[float]:
    times: list[float] = []
    for run in range(warmup + runs):
        began = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
        if run >= warmup:
            times.append(elapsed)
    return times


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


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
        for name, command in commands.items():
            ms = [t * 1000 for t in wall_times(command, env, args.runs, args.warmup)]
            print(json.dumps({
                "figure": f"startup_{name}", "command": " ".join(["python", *command[1:]]),
                "min_ms": round(min(ms), 1), "p50_ms": round(percentile(ms, 50), 1),
                "p95_ms": round(percentile(ms, 95), 1), "max_ms": round(max(ms), 1), "runs": len(ms),
            }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
