"""Memory per held live call: resident memory of the server process with N keep_open calls held.

Three processes, so that only the server is measured: the offline Twilio
(`python -m twilio_caller simulator`, time scale 1000), the server (`python -m twilio_caller
serve` in live mode, pointed at that simulator through TWILIO_API_BASE_URL, in a temporary
home), and this script as the client. Calls are placed through the control API
(`POST /control/tools/call`, keep_open, wait for the first reply) from --workers threads; a
call answered by the default callee is then held: its /gather (later /hold) request waits
for the agent's next `say`. The server's VmRSS (and private memory, from smaps_rollup) is read
from /proc at start-up, after --warmup held calls (imports and pools warm) and at each
checkpoint up to --calls. Figures: RSS at --calls divided by --calls (everything: interpreter,
libraries, SQLite cache), and the increment over the warm-up point per added call (what one
more held call costs). Figures, never pass/fail.

    .venv/bin/python bench/memory.py --calls 500
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from benchhome import config_for


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS, and Private_Clean + Private_Dirty (memory no other process shares), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status)[1])  # type: ignore[index]
    private = sum(int(value) for value in re.findall(r"Private_(?:Clean|Dirty):\s+(\d+)", rollup))
    return {"rss_kb": rss, "private_kb": private}


def start_simulator(env: dict[str, str], account_sid: str, auth_token: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "twilio_caller", "simulator", "--port", "0", "--time-scale", "1000",
         "--account-sid", account_sid, "--auth-token", auth_token],
        env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    match = re.search(r"listening on (\S+)", process.stdout.readline())
    if match is None:
        raise SystemExit(f"the simulator did not start (exit {process.poll()})")
    return process, match[1]


def start_server(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    process = subprocess.Popen([sys.executable, "-m", "twilio_caller", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_file = home / "run" / "server.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if run_file.exists():
            try:
                info: dict[str, Any] = json.loads(run_file.read_text())
                return process, info
            except ValueError:
                pass
        time.sleep(0.05)
    raise SystemExit(f"the server did not start (exit {process.poll()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500, help="held calls at the end (default 500)")
    parser.add_argument("--warmup", type=int, default=10, help="held calls before the reference point (default 10)")
    parser.add_argument("--checkpoints", default="100,250", help="also sample at these counts (default 100,250)")
    parser.add_argument("--workers", type=int, default=20, help="client threads placing calls (default 20)")
    parser.add_argument("--settle", type=float, default=12,
                        help="seconds to wait after the last call before the final sample: one hold cycle (default 12)")
    args = parser.parse_args(argv)
    from twilio_caller.runtime import Runtime

    account_sid, auth_token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    wanted = {args.warmup, *(int(c) for c in args.checkpoints.split(",") if c), args.calls}
    checkpoints = sorted(c for c in wanted if c <= args.calls)
    with tempfile.TemporaryDirectory(prefix="twilio-caller-bench-") as directory:
        home = Path(directory) / "home"
        home.mkdir()
        (home / "config.yaml").write_text(config_for(args.calls + 10))
        contacts = Runtime(home, environ={})
        for index in range(1, args.calls + 1):
            contacts.contacts.add(f"Bench{index}", f"+1312555{index:04d}", "America/Chicago")
        contacts.close()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("TWILIO", "NGROK", "ELEVENLABS")) and "proxy" not in key.lower()}
        env.update(TWILIO_CALLER_HOME=str(home), HOME=directory)
        simulator, api_base = start_simulator(env, account_sid, auth_token)
        server = None
        try:
            server, info = start_server(home, {
                **env, "TWILIO_ACCOUNT_SID": account_sid, "TWILIO_AUTH_TOKEN": auth_token,
                "TWILIO_FROM_NUMBER": "+13125550100", "TWILIO_API_BASE_URL": api_base})
            pid = info["pid"]
            samples = [{"held_calls": 0, **memory_kb(pid)}]
            http = httpx.Client(base_url=f"http://127.0.0.1:{info['control_port']}", trust_env=False,
                                headers={"Authorization": f"Bearer {info['token']}"}, timeout=300,
                                limits=httpx.Limits(max_connections=args.workers))

            def place(index: int) -> bool:
                arguments = {"to": f"Bench{index}", "message": "Quick question about Friday", "keep_open": True,
                             "interactive": True, "wait": True, "timeout_seconds": 120}
                result = http.post("/control/tools/call", json={"arguments": arguments}).json()
                return bool(result.get("reply")) and not result.get("ended", True)

            held, failed = 0, 0
            with ThreadPoolExecutor(args.workers) as pool:
                for checkpoint in checkpoints:
                    outcomes = list(pool.map(place, range(held + failed + 1, held + failed + 1 + checkpoint - held)))
                    held, failed = held + sum(outcomes), failed + outcomes.count(False)
                    if checkpoint == args.calls:
                        time.sleep(args.settle)
                    samples.append({"held_calls": held, **memory_kb(pid)})
            http.close()
        finally:
            for process in (server, simulator):
                if process is not None:
                    process.terminate()
                    try:
                        process.wait(30)
                    except subprocess.TimeoutExpired:
                        process.kill()
        warm = next(s for s in samples if s["held_calls"] >= args.warmup)
        final = samples[-1]
        added = final["held_calls"] - warm["held_calls"]
        for sample in samples:
            print(json.dumps({"figure": "server_memory", **sample}), flush=True)
        print(json.dumps({
            "figure": "memory_per_held_call", "held_calls": final["held_calls"], "failed_calls": failed,
            "rss_per_call_kb": round(final["rss_kb"] / final["held_calls"], 1),
            "increment_per_call_kb": round((final["rss_kb"] - warm["rss_kb"]) / added, 1) if added else None,
            "private_increment_per_call_kb": round((final["private_kb"] - warm["private_kb"]) / added, 1) if added else None,
            "rss_start_kb": samples[0]["rss_kb"], "rss_warm_kb": warm["rss_kb"], "rss_final_kb": final["rss_kb"],
            "target_kb": 100,
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
