"""Webhook throughput: signed Gather posts per second, against a minimal Node.js baseline.

The server under test is the real server (ServerRunner, simulate mode, the package's uvicorn
Listener) in a child process of this script. Before the load starts it opens --sessions live
calls straight in the Dialer's registry (bench-only: the calls table row, a CallSession
waiting for its first Gather result, as after the opening <Gather>), and writes one
pre-signed POST /gather per call: the public URL with ?n=1, Twilio's form parameters and a
distinct SpeechResult, X-Twilio-Signature computed with the account's auth token. So every
post is a first post: the signature is checked, the callee's turn and the closing line are
written to SQLite (a transaction each) before the answer, and no post hits the replay path.

The baseline (bench/baselines/node_twiml_server.js) parses the same form and answers a <Say>
TwiML: no signature check, no storage. Both get the same requests from the same load
generator, wrk with bench/signed_posts.lua (each line of the request file once, in order),
in the same run: a short warm-up each, then the measured runs. One JSON line per server and
one for the ratio. Figures, never pass/fail.

    .venv/bin/python bench/webhook_throughput.py --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "signed_posts.lua"
NODE_BASELINE = BENCH / "baselines" / "node_twiml_server.js"
CONFIG = """\
webhook:
  port: 0
"""
TO, FROM = "+13125550101", "+13125550100"
MESSAGE = "Quick question about Friday"
LUA_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


# -- the server under test (child process) ------------------------------------------------------

def open_sessions(runner: Any, count: int, requests_file: Path) -> None:
    """`count` live calls, each waiting for Gather n=1, and one signed post for each (bench-only:
    private Dialer helpers, in the server's loop thread, before any request arrives)."""
    from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

    from twilio_caller import call_request, numbers
    from twilio_caller.calls import new_call
    from twilio_caller.store.sql.calls import insert_call

    dialer, runtime = runner.dialer, runner._rt
    settings = runtime.settings
    validator = RequestValidator(runner.simulator.auth_token)
    request = call_request.CallRequest(
        number=numbers.parse(TO, "US"), contact=None, message=MESSAGE, interactive=True,
        keep_open=False, voice=settings.voice.default, language=settings.voice.language,
        closing=None,
    )
    with runtime.store.transaction() as connection, requests_file.open("w") as stream:
        for index in range(count):
            call_id, token, sid = f"call_{index:016x}", secrets.token_urlsafe(24), f"CA{index:032x}"
            insert_call(connection, new_call(call_id, token, request), runtime.clock.now())
            connection.execute("UPDATE calls SET twilio_sid = ?, status = 'in-progress' WHERE id = ?",
                               (sid, call_id))
            session = dialer._session(call_id, token, request)
            session.twilio_sid, session.status = sid, "in-progress"
            session.gather_number, session.last_prompt = 1, [MESSAGE]
            dialer.registry.add(session)
            url = dialer.urls.numbered(session, "gather", 1)
            params = {
                "CallSid": sid, "AccountSid": runner.simulator.account_sid, "From": FROM, "To": TO,
                "CallStatus": "in-progress", "ApiVersion": "2010-04-01", "Direction": "outbound-api",
                "Caller": FROM, "Called": TO, "Language": "en-GB",
                "SpeechResult": f"Yes, Friday works, call {index}", "Confidence": "0.9216",
            }
            signature = validator.compute_signature(url, params)
            stream.write(f"{url[len(dialer.public_url):]}\t{signature}\t{urlencode(params)}\n")


def serve(home: Path, sessions: int, uvloop: bool) -> None:
    """Run the server, open the sessions, print {port, pid}, serve until stdin closes.
    uvloop (a what-if, this child only): the server's loop is uvloop's, not asyncio's default."""
    from twilio_caller.runtime import Runtime
    from twilio_caller.server.runner import ServerRunner

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(CONFIG)
    runner = ServerRunner(Runtime(home, environ={}), simulate=True, idle_exit=False)

    async def main() -> None:
        ready = threading.Event()
        server = asyncio.create_task(runner.run(ready))
        while not ready.is_set():
            if server.done():
                await server  # raises why it did not start
            await asyncio.sleep(0.05)
        open_sessions(runner, sessions, home / "requests.tsv")
        print(json.dumps({"port": runner.info["webhook_port"], "pid": os.getpid()}), flush=True)
        await asyncio.to_thread(sys.stdin.read)
        runner.shutdown.set()
        await server

    if uvloop:
        import uvloop as uv

        uv.run(main())
    else:
        asyncio.run(main())


# -- the load ----------------------------------------------------------------------------------------

def wrk(port: int, requests_file: Path, script: Path, *, offset: int, duration: int,
        connections: int, threads: int) -> dict[str, Any]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "15s",
               "-s", str(script), f"http://127.0.0.1:{port}", "--", str(requests_file), str(offset), str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stdout[-500:]}{done.stderr[-500:]}")
    summary: dict[str, Any] = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    return summary


def figure(server: str, summary: dict[str, Any], **extra: Any) -> dict[str, Any]:
    seconds = summary["duration_us"] / 1e6
    return {
        "figure": "webhook_throughput", "server": server,
        "requests_per_s": round(summary["requests"] / seconds, 1),
        "p50_ms": round(summary["p50_us"] / 1000, 2), "p99_ms": round(summary["p99_us"] / 1000, 2),
        "max_ms": round(summary["max_us"] / 1000, 2), "requests": summary["requests"],
        "non_2xx": summary["non_2xx"], "socket_errors": summary["socket_errors"], **extra,
    }


def started(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"{' '.join(command)} did not start (exit {process.wait()})")
    return process, line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server (default 2)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--threads", type=int, default=1,
                        help="wrk threads (default 1: one core for wrk, one for the server on 2 cores)")
    parser.add_argument("--sessions", type=int, default=40000,
                        help="live calls opened, one distinct post each (default 40000; must exceed the posts sent)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="py-spy record the server during its measured run (collapsed stacks to FILE)")
    parser.add_argument("--what-if", choices=["uvloop"], help="uvloop: run the server on uvloop (this bench only)")
    parser.add_argument("--serve", type=Path, metavar="HOME", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.sessions, args.what_if == "uvloop")
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    version = re.sub(r"\s*\[.*", "", subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.splitlines()[0])
    with tempfile.TemporaryDirectory(prefix="twilio-caller-bench-") as directory:
        home = Path(directory) / "home"
        script = Path(directory) / "signed_posts.lua"
        script.write_text(LUA.read_text() + LUA_DONE)
        env = {key: value for key, value in os.environ.items() if not key.startswith("TWILIO")}
        child = [sys.executable, __file__, "--serve", str(home), "--sessions", str(args.sessions)]
        python, line = started(child + (["--what-if", args.what_if] if args.what_if else []), env)
        node, node_line = started(["node", str(NODE_BASELINE), "0"], env)
        ports = {"twilio-caller": json.loads(line)["port"], "node-baseline": int(node_line)}
        requests_file = home / "requests.tsv"
        load = {"connections": args.connections, "threads": args.threads}
        try:
            used = 0
            for name, port in ports.items():
                warm = wrk(port, requests_file, script, offset=0, duration=args.warmup, **load)
                if name == "twilio-caller":
                    used = warm["requests"] + 2 * args.connections  # in flight when wrk stopped
            profiler = None
            if args.profile is not None:
                profiler = subprocess.Popen(
                    [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(json.loads(line)["pid"]), "--format", "raw",
                     "--duration", str(args.duration), "--output", str(args.profile), "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            results = {name: wrk(port, requests_file, script, offset=used if name == "twilio-caller" else 0,
                                 duration=args.duration, **load) for name, port in ports.items()}
            if profiler is not None:
                profiler.wait()
        finally:
            node.terminate()
            assert python.stdin is not None
            python.stdin.close()
            python.wait(60)
            node.wait(10)
        with sqlite3.connect(home / "twilio-caller.db") as db:
            written = db.execute("SELECT count(*) FROM turns WHERE speaker = 'callee'").fetchone()[0]
        sent = used + results["twilio-caller"]["requests"]
        common = {"loadgen": version, **load, "duration_s": args.duration, "what_if": args.what_if}
        print(json.dumps(figure("twilio-caller", results["twilio-caller"], **common, sessions=args.sessions,
                                callee_turns_written=written, replays=sent > args.sessions)), flush=True)
        print(json.dumps(figure("node-baseline", results["node-baseline"], **common)), flush=True)
        rates = {name: result["requests"] / result["duration_us"] for name, result in results.items()}
        print(json.dumps({"figure": "webhook_throughput_ratio", "ratio": round(rates["twilio-caller"] / rates["node-baseline"], 3),
                          "target": 0.5}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
