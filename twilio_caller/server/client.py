"""Finding the server, starting it when needed, and talking to its control API.

A client reads run/server.json and checks health with its token. When no healthy server of
this version and mode runs, it starts one — under an exclusive lock, so a burst of clients
starts exactly one — and waits for its health before going on. A stale file is replaced."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx

from twilio_caller import __version__
from twilio_caller.errors import ServerUnavailableError, from_dict
from twilio_caller.processes import pid_alive
from twilio_caller.server.runfile import read_run_file, run_file
from twilio_caller.server.settings import changed

START_TIMEOUT_SECONDS = 30.0
HEALTH_TIMEOUT_SECONDS = 3.0
SERVER_EXIT_GRACE_SECONDS = 3.0  # a server whose connection broke: how long until it counts as gone
Progress = Callable[[dict[str, Any]], None]


class ServerLostError(ServerUnavailableError):
    """The connection to the server broke while a tool ran (the server may have died)."""


class ServerClient:
    def __init__(self, info: dict[str, Any], home: Path | None = None) -> None:
        self.info = info
        self.home = home  # known: a waiting tool follows its call to the home's next server
        self._base = f"http://127.0.0.1:{info['control_port']}"
        # plain HTTP on loopback: no proxies from the environment, no CA bundle to load
        self._http = httpx.Client(headers={"Authorization": f"Bearer {info['token']}"},
                                  trust_env=False, verify=False)

    def health(self) -> dict[str, Any] | None:
        try:
            response = self._http.get(f"{self._base}/control/health", timeout=HEALTH_TIMEOUT_SECONDS)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def reachability(self) -> dict[str, Any] | None:
        try:
            response = self._http.get(f"{self._base}/control/reachability", timeout=15)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def invoke(self, name: str, arguments: dict[str, Any], *, wait_seconds: float,
               extra: dict[str, Any] | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Run a server-side tool. The HTTP timeout outlasts the tool's own wait. A tool that
        waits on a call (call, say, wait, hangup) and whose server dies meanwhile follows
        the call to the home's next server (follow.py) and returns the call's real result."""
        from twilio_caller.server.follow import Watch, follow

        watch = Watch.start(self.home, name, arguments) if self.home is not None else None
        if watch is not None and name == "call":
            progress = watch.learning_call_id(progress)  # streamed: the call_id comes first
        try:
            return self.request(name, arguments, wait_seconds=wait_seconds, extra=extra, progress=progress)
        except ServerLostError:
            if watch is None or watch.call_id is None or not self.gone():
                raise
            return follow(watch, simulate=self.info.get("mode") == "simulate", wait_seconds=wait_seconds)

    def gone(self, grace_seconds: float = SERVER_EXIT_GRACE_SECONDS) -> bool:
        """True once the server's process has exited (it may take a moment after its socket)."""
        deadline = time.monotonic() + grace_seconds
        while _alive(self.info.get("pid")):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def request(self, name: str, arguments: dict[str, Any], *, wait_seconds: float,
                extra: dict[str, Any] | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """One tool run on this server, without following."""
        body = {"arguments": arguments, **(extra or {})}
        url = f"{self._base}/control/tools/{name}" + ("?stream=1" if progress else "")
        timeout = httpx.Timeout(wait_seconds + 30, connect=HEALTH_TIMEOUT_SECONDS)
        try:
            if progress is None:
                return _answer(self._http.post(url, json=body, timeout=timeout))
            with self._http.stream("POST", url, json=body, timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    return _answer(response)
                return _follow(response, progress)
        except httpx.HTTPError as exc:
            raise ServerLostError(
                f"lost the connection to the twilio-caller server ({type(exc).__name__}); "
                "`twilio-caller server logs` may say why"
            ) from exc

    def stop(self, wait_seconds: float = 15) -> bool:
        """Ask the server to exit; True once its process is gone."""
        try:
            self._http.post(f"{self._base}/control/shutdown", timeout=HEALTH_TIMEOUT_SECONDS)
        except httpx.HTTPError:
            pass
        deadline = time.monotonic() + wait_seconds
        while _alive(self.info.get("pid")) and time.monotonic() < deadline:
            time.sleep(0.05)
        return not _alive(self.info.get("pid"))


def find_server(home: Path, *, check_health: bool = True) -> ServerClient | None:
    """The running server of this home, if any. Without `check_health` a live process that
    wrote the run file is enough (one round trip less, for say/wait/hangup/press)."""
    info = read_run_file(home)
    if info is None or not _alive(info.get("pid")):
        return None
    client = ServerClient(info, home)
    return client if not check_health or client.health() is not None else None


def ensure_server(home: Path, *, simulate: bool, environ: dict[str, str] | None = None,
                  settings: dict[str, str] | None = None) -> ServerClient:
    """The running server, or a new one. `settings` (a fingerprint of the settings a server
    cannot change, from settings.py): a server that runs with others is replaced when idle."""
    mode = "simulate" if simulate else "live"
    running = find_server(home)
    if running and (_instance(running) or _fits(running, mode, settings)):
        return running
    with start_lock(home):
        running = find_server(home)
        if running and (_instance(running) or _fits(running, mode, settings)):
            return running
        if running:
            _replace(running, mode, settings)
        _refuse_if_instance(home)
        _refuse_if_leased(home)
        return _start(home, simulate, environ)


def _instance(client: ServerClient) -> bool:
    """An instance of a shared deployment: the tools use it as it runs (its flags, not this
    home's config, set where it listens and answers); it is never replaced from here."""
    return bool(client.info.get("instance_id"))


def _refuse_if_instance(home: Path) -> None:
    """The home of an instance of a shared deployment (its run file names the instance, kept
    when it stops): no server is started on demand there — it would be a different server."""
    info = read_run_file(home) or {}
    if info.get("instance_id"):
        raise ServerUnavailableError(
            f"instance {info['instance_id']} of a shared deployment runs from this home and is not running; "
            f"start it again (twilio-caller serve --instance {info['instance_id']} …) or point the tools at "
            "another instance's home (TWILIO_CALLER_HOME)"
        )


def _refuse_if_leased(home: Path) -> None:
    """A server that holds the home's lease and still runs, but that this client cannot reach
    (run file missing or stale): starting another would put two servers on one home."""
    from twilio_caller.call_state import HomeLease, home_lease
    from twilio_caller.clock import SystemClock
    from twilio_caller.runtime import existing_store

    store = existing_store(home)
    if store is None:
        return
    try:
        holder = HomeLease(store, SystemClock(), home_lease(home)).holder()
    finally:
        store.close()
    if holder is not None:
        raise ServerUnavailableError(
            f"a twilio-caller server (pid {holder['pid']}) runs this home but cannot be reached "
            f"(its run file {run_file(home)} is missing or stale); stop it (kill {holder['pid']}) "
            "or wait for it to exit, then try again"
        )


def _fits(client: ServerClient, mode: str, settings: dict[str, str] | None) -> bool:
    return (client.info.get("version") == __version__ and client.info.get("mode") == mode
            and (settings is None or not changed(client.info.get("fingerprint"), settings)))


def _replace(client: ServerClient, mode: str, settings: dict[str, str] | None) -> None:
    health = client.health() or {}
    if health.get("live_calls"):
        differs = changed(client.info.get("fingerprint"), settings) if settings else []
        what = f"runs with other settings ({', '.join(differs)})" if differs else (
            f"is in {client.info.get('mode')} mode (version {client.info.get('version')})")
        calls = ", ".join(health.get("live_call_ids") or []) or str(health["live_calls"])
        raise ServerUnavailableError(
            f"the twilio-caller server {what} and has {health['live_calls']} live call(s): {calls}; "
            f"wait for them to end, or end them with `twilio-caller server stop --force`, "
            f"before calling in {mode} mode with these settings"
        )
    if not client.stop():
        raise ServerUnavailableError(
            f"the old server (pid {client.info.get('pid')}) did not stop; "
            "stop it with `twilio-caller server stop` or kill it"
        )


def _start(home: Path, simulate: bool, environ: dict[str, str] | None) -> ServerClient:
    logs = home / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    run_file(home).unlink(missing_ok=True)
    command = [sys.executable, "-m", "twilio_caller", "serve", "--background"]
    if simulate:
        command.append("--simulate")
    env = {**(environ or os.environ), "TWILIO_CALLER_HOME": str(home)}
    with (logs / "server.log").open("ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   env=env, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailableError(
                f"the twilio-caller server did not start: {_last_error(logs / 'server.log')}"
            )
        client = find_server(home)
        if client is not None and client.info.get("pid") == process.pid:
            return client
        time.sleep(0.05)
    process.terminate()
    raise ServerUnavailableError(
        f"the twilio-caller server did not answer within {START_TIMEOUT_SECONDS:.0f} s; "
        "see `twilio-caller server logs`"
    )


@contextmanager
def start_lock(home: Path) -> Iterator[None]:
    """The home's start lock: held while a server is started, so a burst of clients starts one."""
    path = home / "run" / "server.lock"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.waitpid(pid, os.WNOHANG)  # a server this process started and that exited: reap it
    except ChildProcessError:
        pass
    return pid_alive(pid)


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        raise ServerUnavailableError(
            f"the server answered HTTP {response.status_code} without JSON"
        ) from None
    if response.status_code != 200 or "error" in document:
        raise from_dict(document)
    return cast(dict[str, Any], document)


def _follow(response: httpx.Response, progress: Progress) -> dict[str, Any]:
    for line in response.iter_lines():
        if not line.strip():
            continue
        document = json.loads(line)
        if "progress" in document:
            progress(document["progress"])
        elif "result" in document:
            return cast(dict[str, Any], document["result"])
        elif "error" in document:
            raise from_dict(document)
    raise ServerLostError("the server closed the connection before the call's result")


def _last_error(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output; see `twilio-caller server logs`"



