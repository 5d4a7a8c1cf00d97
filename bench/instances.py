"""Several instances on one PostgreSQL (issue 18): the soak of tests/test_instances.py at full
size, and the turn overhead it sees — SQLite (one server, the home's file) vs PostgreSQL, one
instance vs two (webhook requests round-robin across them, tools alternating instances).

Per configuration and size: N keep_open calls at once, 5 turns each (the callee answers at
once, the agent thinks 0 ms), then hang-up. Figures (one JSON line each):

* lost / doubled: calls whose transcript misses a reply or says a question twice (must be 0);
* gather_to_tool_wake: the simulator starts POSTing a Gather result → the agent's waiting
  `say` returns (ms, p50/p95/max; turns 2..5 of every call): what the deployment adds to a turn;
* wall: seconds for the whole soak;
* with `--probe`: where the store's time went in the server processes (bench/probe): statements
  per turn — run synchronously on the event loop's thread (the loop waits), in a store thread,
  or awaited through psycopg's async API — with their total seconds, and the time spent waiting
  for a connection (the single connection's lock before the pool; the pool's getconn after).

    .venv/bin/python bench/instances.py --calls 50,200 --database postgresql://127.0.0.1:5432/test

(`--database`, not TWILIO_CALLER_DATABASE_URL in the environment: the SQLite server would
inherit that variable and use PostgreSQL.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from instancekit import QUESTIONS, Deployment, answer, number, person, question  # noqa: E402
from twilio_caller.simulator import InteractiveCallee, Simulator, SimulatorThread  # noqa: E402
from twilio_caller.simulator import webhook as simulated_webhook  # noqa: E402

GATHER = re.compile(r"/twilio/(?P<call_id>[^/]+)/[^/]+/gather")


class GatherStarts:
    """When the simulator began each Gather-result POST, per call (a wrapper around its client)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts: dict[str, list[float]] = {}
        original = simulated_webhook.WebhookClient.send

        async def send(client: Any, method: str, url: str, params: Any, **options: Any) -> Any:
            match = GATHER.search(url)
            if match and params.get("SpeechResult"):
                with self.lock:
                    self.starts.setdefault(match["call_id"], []).append(time.perf_counter())
            return await original(client, method, url, params, **options)

        simulated_webhook.WebhookClient.send = send  # type: ignore[method-assign]

    def last_after(self, call_id: str, moment: float) -> float | None:
        with self.lock:
            return max((t for t in self.starts.get(call_id, ()) if t >= moment), default=None)


def run(store: str, instances: int, calls: int, url: str | None, probe: GatherStarts,
        store_probe: bool = False) -> dict[str, Any]:
    simulator = Simulator(time_scale=10.0)
    with SimulatorThread(simulator) as running, tempfile.TemporaryDirectory() as root:
        if store_probe:
            os.environ["TC_PROBE_DIR"] = str(Path(root) / "probe")
            (Path(root) / "probe").mkdir()
        database = _fresh_schema(url) if store == "postgres" else None
        deployment = Deployment(database, simulator)
        deployment.start(Path(root), running.base_url, instances)
        runtime = deployment.runtime()
        for index in range(calls):
            runtime.contacts.add(f"Contact{index}", number(index))
            simulator.set_callee(number(index), InteractiveCallee(person, ring_seconds=2))
        runtime.close()
        overheads: list[float] = []
        began = time.perf_counter()
        try:
            with ThreadPoolExecutor(calls) as pool:
                done = list(pool.map(lambda index: _call(deployment, index, probe, overheads), range(calls)))
            wall = time.perf_counter() - began
            lost, doubled = _check(deployment, done)
        finally:
            deployment.stop()
            if database is not None:
                _drop_schema(url, database)
        where = _probed(Path(root) / "probe", calls * QUESTIONS) if store_probe else None
    ordered = sorted(overheads)
    return {
        **({"store_time": where} if where is not None else {}),
        "store": store, "instances": instances, "calls": calls, "turns": calls * QUESTIONS,
        "lost": lost, "doubled": doubled, "wall_seconds": round(wall, 1),
        "gather_to_tool_wake_ms": {
            "p50": round(statistics.median(ordered), 1) if ordered else None,
            "p95": round(ordered[int(len(ordered) * 0.95) - 1], 1) if ordered else None,
            "max": round(ordered[-1], 1) if ordered else None, "samples": len(ordered),
        },
    }


def _call(deployment: Deployment, index: int, probe: GatherStarts, overheads: list[float]) -> tuple[str, list[str]]:
    instances = deployment.instances
    first = instances[index % len(instances)].tool(
        "call", {"to": f"Contact{index}", "message": question(1), "keep_open": True, "wait": True,
                 "timeout_seconds": 120})
    call_id, replies = first["call_id"], [first["reply"]["text"] if first.get("reply") else None]
    for turn in range(2, QUESTIONS + 1):
        on = instances[(index + turn) % len(instances)]
        asked = time.perf_counter()
        result = on.tool("say", {"call_id": call_id, "message": question(turn), "timeout_seconds": 120},
                         wait_seconds=150)
        woke = time.perf_counter()
        replies.append(result["reply"]["text"] if result.get("reply") else None)
        started = probe.last_after(call_id, asked)
        if started is not None:
            overheads.append((woke - started) * 1000)
    instances[index % len(instances)].tool("hangup", {"call_id": call_id})
    return call_id, replies


def _check(deployment: Deployment, done: list[tuple[str, list[str]]]) -> tuple[int, int]:
    lost = doubled = 0
    expected = [answer(turn) for turn in range(1, QUESTIONS + 1)]
    for call_id, replies in done:
        record = deployment.instances[0].tool("call_status", {"call_id": call_id})
        heard = [t["text"] for t in record["transcript"] if t["speaker"] == "callee"]
        said = [t["text"] for t in record["transcript"] if t["speaker"] == "assistant"]
        lost += int(replies != expected or heard != expected)
        doubled += int(any(said.count(question(turn)) != 1 for turn in range(1, QUESTIONS + 1)))
    return lost, doubled


def _probed(directory: Path, turns: int) -> dict[str, Any]:
    """The probes of every server process, summed: per kind, statements per turn and ms."""
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for path in directory.glob("*.json"):
        data = json.loads(path.read_text())
        for kind, n in data["counts"].items():
            counts[kind] = counts.get(kind, 0) + n
            seconds[kind] = seconds.get(kind, 0.0) + data["seconds"].get(kind, 0.0)
    return {kind: {"per_turn": round(counts[kind] / turns, 1), "total_ms": round(seconds[kind] * 1000),
                   "mean_ms": round(seconds[kind] * 1000 / counts[kind], 2)} for kind in sorted(counts)}


def _fresh_schema(url: str | None) -> str:
    import psycopg

    if url is None:
        raise SystemExit("set TWILIO_CALLER_DATABASE_URL (or --database) to a PostgreSQL database")
    schema = f"bench_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def _drop_schema(url: str | None, database: str) -> None:
    import psycopg

    schema = database.rsplit("search_path%3D", 1)[1]
    with psycopg.connect(url or "", autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default="50,200", help="sizes, comma-separated")
    parser.add_argument("--configs", default="sqlite:1,postgres:1,postgres:2", help="store:instances, comma-separated")
    parser.add_argument("--database", default=os.environ.get("TWILIO_CALLER_DATABASE_URL"))
    parser.add_argument("--probe", action="store_true", help="measure the store's time in the servers (bench/probe)")
    options = parser.parse_args()
    if options.probe:
        probe_dir = str(Path(__file__).resolve().parent / "probe")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [probe_dir, os.environ.get("PYTHONPATH")]))
    probe = GatherStarts()
    for size in (int(n) for n in options.calls.split(",")):
        for config in options.configs.split(","):
            store, instances = config.split(":")
            print(json.dumps(run(store, int(instances), size, options.database, probe, options.probe)), flush=True)


if __name__ == "__main__":
    main()
