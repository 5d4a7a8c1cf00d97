"""Turn overhead: how long the skill itself adds to a conversational turn.

Two figures per concurrency level, from per-turn samples (milliseconds):

* gather_to_tool_wake: the simulator starts sending a <Gather> result (POST /gather)
  → the agent's waiting `say` tool call returns in the client.
* say_to_twiml: the client calls `say` → the simulator has read the TwiML that answers
  the held webhook request (/gather, or /hold when the hold budget ran out).

A simulate-mode server (ServerRunner in a ServerThread, as tests/conftest.py does) runs in
this process with a temporary TWILIO_CALLER_HOME; N keep_open calls are placed from N
threads (--place-rate per second), all N are live before the first measured turn, then each
thread runs --turns say → reply turns, pausing --think-ms before each, and hangs up.
--client tool drives the real tools (manifest.invoke → tools → control API); --client http
posts to the control API on one kept-alive connection per thread (the server's share only).
Timestamps come from a thin wrapper this script puts around the simulator's webhook client;
--what-if patches a suggested fix in (this process only). The package is not changed.
Figures, never pass/fail: one JSON line per figure on stdout.

    .venv/bin/python bench/turn_overhead.py --calls 1,200 --turns 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchhome import config_for
from benchstats import percentiles

WEBHOOK_PATH = re.compile(r"/twilio/(?P<call_id>[^/]+)/[^/]+/(?P<route>voice|gather|hold|status)")


@dataclass
class Sent:
    """One request the simulator made to the webhook: when it started and when the answer was read."""

    route: str
    started: float
    answered: float | None = None


@dataclass
class Probe:
    """What the simulator sent, per call_id (written from the server's loop, read by client threads)."""

    requests: dict[str, list[Sent]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, url: str, moment: float) -> Sent | None:
        match = WEBHOOK_PATH.search(url)
        if match is None:
            return None
        sent = Sent(match["route"], moment)
        with self.lock:
            self.requests.setdefault(match["call_id"], []).append(sent)
        return sent

    def last_gather_started(self, call_id: str) -> float:
        with self.lock:
            return max(s.started for s in self.requests[call_id] if s.route == "gather")

    def first_answer_after(self, call_id: str, moment: float) -> float | None:
        """When the simulator got the TwiML for a held /gather or /hold request, after `moment`."""
        with self.lock:
            answers = [s.answered for s in self.requests.get(call_id, ())
                       if s.route in ("gather", "hold") and s.answered is not None and s.answered >= moment]
        return min(answers, default=None)


@contextmanager
def timed_simulator(probe: Probe) -> Iterator[None]:
    """Wrap WebhookClient.send (the simulator's every request to the app) with timestamps."""
    from twilio_caller.simulator.webhook import WebhookClient

    original = WebhookClient.send

    async def send(self: WebhookClient, method: str, url: str, params: Any, **options: Any) -> Any:
        entry = probe.started(url, time.perf_counter())
        sent = await original(self, method, url, params, **options)
        if entry is not None:
            entry.answered = time.perf_counter()
        return sent

    WebhookClient.send = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        WebhookClient.send = original  # type: ignore[method-assign]


WHAT_IFS = ("pool-per-call",)


@contextmanager
def what_if(fixes: frozenset[str]) -> Iterator[None]:
    """Off by default: measure a suggested fix by patching it in, in this process only.

    pool-per-call: the simulator's webhook client with one httpx connection pool per call
      instead of one unbounded pool for the whole account (twilio_caller/simulator/webhook.py,
      WebhookClient._client). httpcore scans every connection of a pool on each request event
      (AsyncConnectionPool._assign_requests_to_connections: is_idle, has_expired → getpeername),
      so with N held long-polls each request costs O(N) and the simulator's thread takes most
      of the GIL at 200 calls. Real Twilio has no such shared pool.
    (History: the earlier what-ifs `nodelay` and `pool` are now in the package.)
    """
    import contextvars

    import httpx

    from twilio_caller.simulator import webhook

    current_call: contextvars.ContextVar[str] = contextvars.ContextVar("bench_call", default="")
    clients: dict[str, httpx.AsyncClient] = {}
    send = webhook.WebhookClient.send

    def client_per_call(self: webhook.WebhookClient) -> httpx.AsyncClient:
        client = clients.get(current_call.get())
        if client is None:
            client = clients[current_call.get()] = httpx.AsyncClient(
                follow_redirects=True, trust_env=False,
                timeout=httpx.Timeout(webhook.HTTP_LIMIT_SECONDS, connect=webhook.CONNECT_SECONDS),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            )
        return client

    async def send_per_call(self: webhook.WebhookClient, method: str, url: str, params: Any, **options: Any) -> Any:
        match = WEBHOOK_PATH.search(url)
        token = current_call.set(match["call_id"] if match else "")
        try:
            return await send(self, method, url, params, **options)
        finally:
            current_call.reset(token)

    patches: list[tuple[object, str, object]] = []
    if "pool-per-call" in fixes:
        patches += [(webhook.WebhookClient, "_client", client_per_call), (webhook.WebhookClient, "send", send_per_call)]
    saved = [(target, name, getattr(target, name)) for target, name, _ in patches]
    for target, name, value in patches:
        setattr(target, name, value)
    try:
        yield
    finally:
        for target, name, value in saved:
            setattr(target, name, value)


@dataclass
class Samples:
    wake: list[float] = field(default_factory=list)
    say: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def contact_name(index: int) -> str:
    return f"Bench{index}"


def tool_client(runtime: Any) -> Callable[..., dict[str, Any]]:
    """The real tools, as an agent runs them: manifest.invoke → tools → find_server → control API."""
    from twilio_caller.manifest import invoke

    return lambda name, **arguments: invoke(name, arguments, runtime)


def bench_client(home: Path, calls: int) -> Any:
    """A fresh benchmark home for `calls` calls, a contact for each; the runtime whose tools run
    simulated (as an agent's would)."""
    from twilio_caller.invocation import SIMULATE_ENV
    from twilio_caller.runtime import Runtime

    home.mkdir()
    (home / "config.yaml").write_text(config_for(max(calls, 3)))
    client = Runtime(home, environ={SIMULATE_ENV: "1"})
    for index in range(1, calls + 1):
        client.contacts.add(contact_name(index), f"+1312555{index:04d}", "America/Chicago")
    return client


def hang_up(tool: Callable[..., dict[str, Any]], call_id: str | None, errors: list[str]) -> None:
    """Hang up a bench call that was placed; a failure goes to `errors`, never raised."""
    if call_id is None:
        return
    try:
        tool("hangup", call_id=call_id)
    except Exception as exc:  # noqa: BLE001 - reported
        errors.append(f"hangup {call_id}: {exc}")


def http_client(runtime: Any) -> Callable[..., dict[str, Any]]:
    """The control API straight, with one keep-alive connection per thread: the server's share."""
    import httpx

    from twilio_caller.server.runfile import read_run_file

    local = threading.local()

    def call(name: str, **arguments: Any) -> dict[str, Any]:
        if not hasattr(local, "http"):
            info = read_run_file(runtime.home)
            assert info is not None
            local.http = httpx.Client(base_url=f"http://127.0.0.1:{info['control_port']}", trust_env=False,
                                      headers={"Authorization": f"Bearer {info['token']}"}, timeout=400)
        response = local.http.post(f"/control/tools/{name}", json={"arguments": arguments})
        document: dict[str, Any] = response.json()
        if "error" in document:
            raise RuntimeError(document["error"])
        return document

    return call


CLIENTS = {"tool": tool_client, "http": http_client}


def run_level(calls: int, turns: int, think_ms: float, time_scale: float, client_kind: str,
              fixes: frozenset[str], place_rate: float) -> tuple[Samples, int, float]:
    """One fresh home and server; `calls` calls at once. Returns the samples and the peak live calls."""
    from twilio_caller.runtime import Runtime
    from twilio_caller.server.runner import ServerRunner, ServerThread

    probe, samples = Probe(), Samples()
    with (tempfile.TemporaryDirectory(prefix="twilio-caller-bench-") as directory,
          timed_simulator(probe), what_if(fixes)):
        client = bench_client(Path(directory) / "home", calls)
        home = client.home
        runner = ServerRunner(Runtime(home, environ={}), simulate=True, idle_exit=False,
                              time_scale=time_scale)
        # The default callee (FriendlyCallee) answers every prompt with "Okay, thanks".
        all_live = threading.Barrier(calls + 1)
        peak, ramp = [0], [0.0]

        tool = CLIENTS[client_kind](client)

        def conversation(index: int) -> None:
            rng = random.Random(index)
            call_id, waited = None, False
            try:
                time.sleep((index - 1) / place_rate)  # placements spread out: turns are measured, not the burst
                first = tool("call", to=contact_name(index), message="Quick question about Friday",
                             keep_open=True, interactive=False, wait=True, timeout_seconds=300)
                call_id = first["call_id"]
                if first["reply"] is None:
                    raise RuntimeError(f"no first reply: {first['no_reply_reason']}")
                waited = True
                all_live.wait(timeout=900)
                for turn in range(turns):
                    if think_ms:
                        time.sleep(rng.uniform(0, 2 * think_ms) / 1000)
                    said_at = time.perf_counter()
                    result = tool("say", call_id=call_id, message=f"Turn {turn}: does that work?",
                                  expect_reply=True, timeout_seconds=60)
                    woke_at = time.perf_counter()
                    if result["reply"] is None or result["ended"]:
                        raise RuntimeError(f"turn {turn}: {result['no_reply_reason']}, ended={result['ended']}")
                    answered_at = probe.first_answer_after(call_id, said_at)
                    gathered_at = probe.last_gather_started(call_id)
                    with samples.lock:
                        if answered_at is not None:
                            samples.say.append(answered_at - said_at)
                        samples.wake.append(woke_at - gathered_at)
            except Exception as exc:  # noqa: BLE001 - reported, never raised; the others still start together
                with samples.lock:
                    samples.errors.append(f"{contact_name(index)}: {type(exc).__name__}: {exc}")
                if not waited:
                    all_live.wait(timeout=900)
            finally:
                if call_id is not None:
                    try:
                        tool("hangup", call_id=call_id)
                    except Exception as exc:  # noqa: BLE001 - reported
                        with samples.lock:
                            samples.errors.append(f"hangup {call_id}: {exc}")

        with ServerThread(runner):
            threads = [threading.Thread(target=conversation, args=(i,), name=f"call {i}")
                       for i in range(1, calls + 1)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            try:
                all_live.wait(timeout=900)
                ramp[0] = time.perf_counter() - started
                assert runner.dialer is not None
                peak[0] = len(runner.dialer.registry.live())
            except threading.BrokenBarrierError:
                pass
            for thread in threads:
                thread.join()
            if samples.errors:
                print(f"calls that ended early: {simulator_report(runner.simulator)}", file=sys.stderr)
        client.close()
    return samples, peak[0], ramp[0]


def route(url: str | None) -> str:
    match = WEBHOOK_PATH.search(url or "")
    return match["route"] if match else str(url)


def simulator_report(simulator: Any) -> dict[str, int]:
    """How the simulator's calls ended, and their webhook errors, counted."""
    counts: dict[str, int] = {}
    for record in simulator.calls:
        keys = [f"end_reason={record.end_reason}"] + [f"error={e.code} on {route(e.url)}: {e.message[:50]}" for e in record.errors]
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
    return counts


def figure(name: str, calls: int, values: list[float], **extra: Any) -> dict[str, Any]:
    ms = [v * 1000 for v in values]
    line: dict[str, Any] = {"figure": name, "calls": calls}
    line.update(percentiles(ms, "ms", (50, 95, 99), 2))
    if ms:
        line["max_ms"] = round(max(ms), 2)
    line["samples"] = len(ms)
    line.update(extra)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="1,200", help="concurrency levels, comma-separated (default 1,200)")
    parser.add_argument("--turns", type=int, default=10, help="measured say → reply turns per call (default 10)")
    parser.add_argument("--think-ms", type=float, default=4000,
                        help="mean pause before each say, uniform 0..2x (default 4000; 0 = none). It stands for the "
                             "real-time part of a turn the time scale removes (callee speech, agent thinking) and "
                             "sets the load: calls / mean think = turns per second")
    parser.add_argument("--place-rate", type=float, default=10,
                        help="calls placed per second while the calls are set up (default 10)")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="tool",
                        help="tool: the real tools (default); http: the control API on a kept-alive connection")
    parser.add_argument("--what-if", default="", metavar="FIX,...",
                        help=f"patch suggested fixes in, in this process only: {', '.join(WHAT_IFS)} (see what_if)")
    parser.add_argument("--time-scale", type=float, default=1000, help="simulator time scale (default 1000)")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.calls.split(",") if level.strip()]
    fixes = frozenset(fix for fix in args.what_if.split(",") if fix)
    if not fixes <= set(WHAT_IFS):
        parser.error(f"--what-if takes {', '.join(WHAT_IFS)}")
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "TWILIO_CALLER_HOME"):
        os.environ.pop(variable, None)
    failed = False
    for calls in levels:
        began = time.perf_counter()
        samples, peak, ramp = run_level(calls, args.turns, args.think_ms, args.time_scale, args.client,
                                         fixes, args.place_rate)
        measured = time.perf_counter() - began - ramp
        extra = {"client": args.client, "turns_per_s": round(len(samples.wake) / measured, 1) if measured > 0 else None,
                 "failed_calls": len({e.split(":")[0] for e in samples.errors if not e.startswith("hangup")}), "what_if": sorted(fixes), "live_calls_at_start": peak, "ramp_s": round(ramp, 1), "turns": args.turns, "think_ms": args.think_ms,
                 "wall_s": round(time.perf_counter() - began, 1)}
        for name, values in (("gather_to_tool_wake", samples.wake), ("say_to_twiml", samples.say)):
            print(json.dumps(figure(name, calls, values, **extra)), flush=True)
        for error in samples.errors[:10]:
            print(f"error: {error}", file=sys.stderr)
        failed = failed or bool(samples.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
