"""The server process: found through run/server.json, started once under a lock, stale files
replaced, idle exit."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

from twilio_caller.runtime import Runtime
from twilio_caller.server.client import ensure_server, find_server
from twilio_caller.server.runfile import read_run_file, run_file
from twilio_caller.server.runner import ServerRunner, ServerThread

CONFIG = 'webhook: {port: 0}\nserver: {idle_exit_seconds: %s}\n'


def write(home: Path, idle: float = 600) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(CONFIG % idle)


def test_the_run_file_is_private_and_names_the_listeners(home: Path) -> None:
    write(home)
    secret = "0123456789abcdef" * 2
    environ = {"TWILIO_AUTH_TOKEN": secret}
    with ServerThread(ServerRunner(Runtime(home, environ=environ), simulate=True, idle_exit=False)):
        info = read_run_file(home)
        assert set(info) == {"pid", "webhook_port", "control_port", "token", "version", "mode", "started_at",
                             "instance_id", "settings", "fingerprint"}
        assert info["instance_id"] is None  # a home's own server, not an instance of a shared deployment
        assert info["settings"]["twilio.auth_token"] == "****cdef" and secret not in run_file(home).read_text()
        assert info["settings"]["webhook.port"] == 0 and "safety.blocked" not in info["settings"]
        assert info["mode"] == "simulate" and info["pid"] == os.getpid()
        assert info["webhook_port"] != info["control_port"]
        assert os.stat(run_file(home)).st_mode & 0o777 == 0o600
        client = find_server(home)
        assert client is not None and client.health()["live_calls"] == 0
    assert not run_file(home).exists()


def test_the_control_api_wants_the_token(home: Path) -> None:
    import httpx

    write(home)
    with ServerThread(ServerRunner(Runtime(home, environ={}), simulate=True, idle_exit=False)):
        info = read_run_file(home)
        base = f"http://127.0.0.1:{info['control_port']}"
        assert httpx.get(f"{base}/control/health", trust_env=False).status_code == 403
        forged = httpx.post(f"{base}/control/tools/call_status", json={"arguments": {"call_id": "x"}},
                            headers={"Authorization": "Bearer nope"}, trust_env=False)
        assert forged.status_code == 403


def test_the_webhook_port_serves_no_control_api(home: Path) -> None:
    import httpx

    write(home)
    with ServerThread(ServerRunner(Runtime(home, environ={}), simulate=True, idle_exit=False)):
        info = read_run_file(home)
        response = httpx.get(f"http://127.0.0.1:{info['webhook_port']}/control/health",
                             headers={"Authorization": f"Bearer {info['token']}"}, trust_env=False)
        assert response.status_code == 404


def test_a_stale_run_file_is_ignored(home: Path) -> None:
    write(home)
    run_file(home).parent.mkdir(parents=True)
    run_file(home).write_text(json.dumps({"pid": 2**22 + 7, "control_port": 9, "token": "x",
                                          "version": "0", "mode": "live"}))
    assert find_server(home) is None


def test_an_idle_server_exits(home: Path) -> None:
    write(home, idle=0.2)
    thread = ServerThread(ServerRunner(Runtime(home, environ={}), simulate=True, idle_exit=True)).start()
    assert thread.join(20)
    assert not run_file(home).exists()


def _client(home: str, results) -> None:
    results.put(ensure_server(Path(home), simulate=True).info["pid"])


def test_a_burst_of_clients_starts_exactly_one_server(home: Path) -> None:
    write(home)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    clients = [context.Process(target=_client, args=(str(home), results)) for _ in range(4)]
    for process in clients:
        process.start()
    for process in clients:
        process.join(120)
    pids = {results.get(timeout=5) for _ in clients}
    try:
        assert len(pids) == 1
        server = find_server(home)
        assert server is not None and server.info["pid"] in pids
    finally:
        server = find_server(home)
        if server is not None:
            assert server.stop()
