"""Several server instances on one PostgreSQL database, as a shared deployment runs them:
`serve --instance` processes (separate ports, one home each: tools point at an instance through
its home's run file), a simulated Twilio whose webhook requests go to the instances in turn
(the round-robin chaos switch, as a balancer), and the agent's tools on either instance.
Used by tests/test_instances.py (small sizes) and bench/instances.py (full sizes)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polling import eventually
from twilio_caller.runtime import Runtime
from twilio_caller.server.client import ServerClient
from twilio_caller.server.runfile import read_run_file
from twilio_caller.simulator import Simulator

PUBLIC = "https://calls.example.com"
QUESTIONS = 5  # turns per call in the soak


RING_SECONDS = 20  # the ring time Twilio is given (a taken-over call is guarded to placed + ring + limit + grace)


def config(simulator: Simulator, api: str, *, cap: int = 10, hold: float = 0.5, engine: str = "gather",
           max_duration: int = 300) -> str:
    return (
        'safety: {calling_hours: "00:00-24:00", callee_hours: null, max_concurrent_calls: 400,'
        f" max_calls_per_day: 5000, max_calls_per_contact_per_day: {cap},"
        f" min_seconds_between_calls_to_contact: 0, max_duration_seconds: {max_duration}}}\n"
        "identity: {assistant_name: Yamani, owner_name: Robert}\n"
        f"conversation: {{engine: {engine}, hold_budget_seconds: {hold}, unsteered_limit_seconds: 60}}\n"
        f"twilio: {{api_base_url: '{api}', account_sid: {simulator.account_sid},"
        f" auth_token: {simulator.auth_token}, from_number: '+13125550100', ring_timeout_seconds: {RING_SECONDS}}}\n"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Instance:
    instance_id: str
    home: Path
    port: int
    process: subprocess.Popen[bytes]
    client: ServerClient | None = None
    _clients: threading.local = field(default_factory=threading.local)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tool(self, name: str, arguments: dict[str, Any], wait_seconds: float = 60) -> dict[str, Any]:
        assert self.client is not None
        client = getattr(self._clients, "client", None)
        if client is None:  # one connection pool per agent thread, as separate agents have
            client = self._clients.client = ServerClient(self.client.info)
        return client.invoke(name, arguments, wait_seconds=wait_seconds)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Deployment:
    """`url`: the PostgreSQL database of the instances; None: one server on its home's SQLite
    file (as a home runs it, with a fixed port and public URL), for comparison."""

    url: str | None
    simulator: Simulator
    instances: list[Instance] = field(default_factory=list)

    def start(self, root: Path, api: str, count: int, **options: Any) -> None:
        for index in range(count):
            home = root / f"instance-{index}"
            home.mkdir(parents=True)
            port = free_port()
            text = config(self.simulator, api, **options)
            if self.url is None:
                text += f"webhook: {{host: 127.0.0.1, port: {port}}}\npublic_url: {PUBLIC}\n"
                command = ["serve"]
            else:
                command = ["serve", "--instance", f"i{index}", "--store", self.url, "--host", "127.0.0.1",
                           "--port", str(port), "--public-url", PUBLIC]
            (home / "config.yaml").write_text(text)
            (home / "config.yaml").chmod(0o600)
            process = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "twilio_caller", *command],
                env={**os.environ, "TWILIO_CALLER_HOME": str(home), "NO_PROXY": "127.0.0.1,localhost"},
                stdout=subprocess.DEVNULL, stderr=(home / "serve.log").open("wb"),
            )
            self.instances.append(Instance(f"i{index}" if self.url else "", home, port, process))
        for instance in self.instances:
            instance.client = _ready(instance)
        self.simulator.chaos.round_robin(PUBLIC, [instance.base_url for instance in self.instances])

    def runtime(self) -> Runtime:
        """A runtime on the deployment's store (contacts, records)."""
        return Runtime(self.instances[0].home, environ={"TWILIO_CALLER_DATABASE_URL": self.url} if self.url else {})

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()


def _ready(instance: Instance, seconds: float = 60) -> ServerClient:
    """The instance's server once it answers /health. It is another OS process with no signal
    to wait on (its run file and its health are all it shows), so this polls until a deadline."""
    clients: list[ServerClient] = []

    def answering() -> bool:
        if instance.process.poll() is not None:
            raise RuntimeError(f"instance {instance.instance_id} exited: "
                               + (instance.home / "serve.log").read_text()[-2000:])
        info = read_run_file(instance.home)
        if info is None or (info.get("instance_id") or "") != instance.instance_id:
            return False
        clients.append(ServerClient(info))
        return clients[-1].health() is not None

    if not eventually(answering, seconds):
        raise RuntimeError(f"instance {instance.instance_id} did not start")
    return clients[-1]


def number(index: int) -> str:
    return f"+1312555{1000 + index:04d}"


def question(turn: int) -> str:
    return f"Question {turn}?"


def answer(turn: int) -> str:
    return f"Answer {turn}"


def person(heard: str) -> str:
    """Answers the last question it heard (asked again: the same answer)."""
    asked = [turn for turn in range(1, QUESTIONS + 1) if question(turn) in heard]
    return answer(max(asked, key=lambda turn: heard.rindex(question(turn)))) if asked else ""


def converse(deployment: Deployment, index: int, first: int = 1, last: int = QUESTIONS,
             call_id: str | None = None) -> tuple[str, list[str]]:
    """One call's turns `first`..`last`, each tool on the next instance in turn (the call on
    instance `index`); the replies the tools returned."""
    instances = deployment.instances
    replies = []
    for turn in range(first, last + 1):
        on = instances[(index + turn) % len(instances)]
        if call_id is None:
            result = on.tool("call", {"to": f"Contact{index}", "message": question(turn), "keep_open": True,
                                      "wait": True, "timeout_seconds": 60})
            call_id = result["call_id"]
        else:
            result = on.tool("say", {"call_id": call_id, "message": question(turn), "expect_reply": True,
                                     "timeout_seconds": 60})
        replies.append(result["reply"]["text"] if result.get("reply") else f"no reply: {result['no_reply_reason']}")
    assert call_id is not None
    return call_id, replies
