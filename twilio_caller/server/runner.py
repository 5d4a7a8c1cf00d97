"""The server process: the webhook listener (what a tunnel forwards), the control listener
(127.0.0.1 only), and in simulate mode the simulator — one event loop owning every live call.
It announces itself in run/server.json (0600) and exits after idling."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import signal
import threading
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from twilio_caller import __version__
from twilio_caller.audio import AudioLibrary
from twilio_caller.call_state import HomeLease, home_lease, instance_lease, new_owner
from twilio_caller.clock import isoformat
from twilio_caller.dialer import Dialer
from twilio_caller.errors import ConfigError, InvalidInputError, ServerUnavailableError
from twilio_caller.runtime import Runtime
from twilio_caller.scheduler import Scheduler
from twilio_caller.server.runfile import remove_run_file, write_run_file
from twilio_caller.settings import Settings
from twilio_caller.serving import Listener, PortInUse, base_url, bind
from twilio_caller.transport.twilio.calls import Credentials, Telephony
from twilio_caller.tunnel import open_public_url

log = logging.getLogger("twilio_caller.server")
SIMULATED_FROM_NUMBER = "+13125550100"
PURGE_EVERY_SECONDS = 3600  # transcripts older than retention.days go at start and hourly
RECONCILE_EVERY_SECONDS = 30  # while the store holds live calls
LEASE_EVERY_SECONDS = 5


@dataclass(frozen=True)
class Deployment:
    """`serve --instance`: one of several instances on one PostgreSQL database behind a
    balancer — listening on `host:port`, answering at the deployment's public URL (no tunnel),
    running until stopped (no idle exit), holding the lease of its id instead of the home's."""

    instance_id: str
    host: str
    port: int


class ServerRunner:
    def __init__(
        self,
        runtime: Runtime,
        *,
        simulate: bool,
        idle_exit: bool,
        time_scale: float = 1.0,
        callees: Mapping[str, Any] | None = None,
        default_callee: Any = None,
        deployment: Deployment | None = None,
    ) -> None:
        self._rt = runtime
        self._deployment = deployment
        self._simulate = simulate
        self._idle_exit = idle_exit
        self._time_scale = time_scale
        self._callees = callees or {}
        self._default_callee = default_callee
        self._before_call_script: dict[str, Any] = {}  # number → its callee before a --callee call
        self.shutdown = asyncio.Event()
        self.info: dict[str, Any] = {}
        self.dialer: Dialer | None = None
        self.scheduler: Scheduler | None = None
        self.simulator: Any = None

    @property
    def mode(self) -> str:
        return "simulate" if self._simulate else "live"

    async def run(self, ready: threading.Event | None = None) -> None:
        config = self._rt.config
        self._check_deployment()
        owner = new_owner(self._deployment.instance_id if self._deployment else None)
        self._lease_home(owner)  # before anything is opened: one server per home (per instance id)
        async with AsyncExitStack() as stack:
            stack.callback(self._lease.release, owner)
            credentials = await self._credentials(stack)
            host, port = ((self._deployment.host, self._deployment.port) if self._deployment
                          else (config.settings.webhook.host, config.settings.webhook.port))
            webhook_socket = _bind(host, port, "webhook.port (serve --port)")
            control_socket = _bind("127.0.0.1", 0, None)
            local = base_url(webhook_socket)
            tunnel = await open_public_url(config, local, webhook_socket.getsockname()[1], self._rt.home)
            stack.push_async_callback(tunnel.close)  # ngrok closes when the server stops
            public = tunnel.public_url.rstrip("/")
            if self.simulator is not None and public != base_url(webhook_socket):
                self.simulator.add_tunnel(public, base_url(webhook_socket))  # as the tunnel would
            _check_default_voice(config.settings)
            audio = AudioLibrary.from_config(config)
            stack.push_async_callback(audio.aclose)
            self.dialer = Dialer(self._rt, Telephony(credentials, self._rt.store.ledger), public, audio,
                                 real_calls=not self._simulate, owner=owner)
            stack.push_async_callback(self.dialer.close)
            await self.dialer.listen()  # instances sharing the store wake each other's waiters
            token = secrets.token_urlsafe(32)
            from twilio_caller.server.control import Activity, build_control_app
            from twilio_caller.server.webhook import build_webhook_app

            activity = Activity(self._rt.clock.monotonic)
            webhook = Listener(build_webhook_app(self.dialer, public, audio),
                               webhook_socket)
            self.scheduler = Scheduler(self._rt, self.dialer)
            stack.push_async_callback(self.scheduler.close)
            control = Listener(
                build_control_app(self.dialer, token, self.mode, activity, self.shutdown,
                                  self._call_callee if self._simulate else None, self.scheduler,
                                  self._deployment.instance_id if self._deployment else None),
                control_socket,
            )
            for listener in (webhook, control):
                await listener.start()
                stack.push_async_callback(listener.stop)
            recovered = await self.dialer.recover()
            if recovered:
                log.info("took back %d live call(s) after a restart: %s", len(recovered), ", ".join(recovered))
            self.info = {
                "pid": os.getpid(), "webhook_port": webhook.port, "control_port": control.port,
                "token": token, "version": __version__, "mode": self.mode,
                "instance_id": self._deployment.instance_id if self._deployment else None,
                "started_at": isoformat(self._rt.clock.now()),
                **_settings(config, self.mode),
            }
            self.dialer.fixed_settings_guard = self._same_fixed_settings
            write_run_file(self._rt.home, self.info)
            if self._deployment is None:  # an instance's stays: tools there start no server of their own
                stack.callback(remove_run_file, self._rt.home, os.getpid())
            log.info("serving: webhook %s, control port %s, mode %s", public, control.port, self.mode)
            scheduling = asyncio.ensure_future(self.scheduler.run(self.shutdown))
            stack.callback(scheduling.cancel)
            if ready is not None:
                ready.set()
            await self._until_stopped(activity)

    async def _credentials(self, stack: AsyncExitStack) -> Credentials:
        if not self._simulate:
            return Credentials.from_settings(self._rt.settings.twilio)
        from twilio_caller.simulator import FriendlyCallee, Simulator, SimulatorThread

        self.simulator = Simulator(
            time_scale=self._time_scale,
            default_callee=self._default_callee or FriendlyCallee(),
        )
        for number, script in self._callees.items():
            self._set_callee(number, script)
        # Twilio's side runs on its own event loop, as it would on its own machines: the
        # server's loop serves only the server.
        server = SimulatorThread(self.simulator)
        await asyncio.to_thread(server.start)
        stack.push_async_callback(asyncio.to_thread, server.stop)
        return Credentials(
            account_sid=self.simulator.account_sid, auth_token=self.simulator.auth_token,
            from_number=self._rt.settings.twilio.from_number or SIMULATED_FROM_NUMBER,
            api_base_url=server.base_url,
        )

    def _same_fixed_settings(self, config: Any) -> None:
        """A call is placed only with the settings this server runs with: an edit to one it
        cannot change while running (ports, tunnel, account, endpoint) needs a restart."""
        from twilio_caller.server.settings import changed, fingerprint, fixed_settings

        differs = changed(self.info["fingerprint"], fingerprint(fixed_settings(config, self.mode)))
        if differs:
            raise ServerUnavailableError(
                f"the config now changes {', '.join(differs)}, which this server cannot change while it "
                "runs; a call from `twilio-caller call` or the tools restarts it when no call is live, "
                "or stop it with `twilio-caller server stop`"
            )

    def _set_callee(self, number: str, script: Mapping[str, Any]) -> None:
        from twilio_caller.simulator import CalleeScript, CalleeScriptError

        try:
            self.simulator.set_callee(number, CalleeScript.from_dict(script, name=number))
        except CalleeScriptError as exc:
            raise InvalidInputError(f"callee script: {exc}") from exc

    @functools.cached_property
    def _lease(self) -> HomeLease:
        """The home's one-server lease, or this instance's (opened with the store at start)."""
        name = instance_lease(self._deployment.instance_id) if self._deployment else home_lease(self._rt.home)
        return HomeLease(self._rt.store, self._rt.clock, name)

    def _check_deployment(self) -> None:
        if self._deployment is None:
            return
        if not self._rt.store.wakeups.shared:
            raise ConfigError("serve --instance runs one of several servers on one database: give it "
                              "--store postgresql://… (or store.url / TWILIO_CALLER_DATABASE_URL)")
        if not self._rt.settings.public_url or self._rt.settings.tunnel.provider != "none":
            raise ConfigError("serve --instance answers at the deployment's public URL (the balancer): "
                              "give it --public-url https://… (or public_url), with tunnel.provider none")

    def _lease_home(self, owner: str) -> None:
        """One server per home: another that holds a fresh lease and still runs wins."""
        holder = self._lease.acquire(owner, os.getpid())
        if holder is not None and self._deployment is not None:
            raise ServerUnavailableError(
                f"instance {self._deployment.instance_id} already runs on this database (pid {holder['pid']}, "
                f"lease until {holder['lease_until']}); give each instance its own --instance id")
        if holder is not None:
            raise ServerUnavailableError(
                f"another twilio-caller server (pid {holder['pid']}) runs this home "
                f"({self._rt.home}); stop it with `twilio-caller server stop`, or wait for it to exit"
            )

    def _call_callee(self, number: str, script: Mapping[str, Any] | None) -> None:
        """A call's own callee script (`call --callee`) applies to that call only: the next
        call to the number without one gets the callee it had before."""
        if script is not None:
            self._before_call_script.setdefault(number, self.simulator.scripted_callee(number))
            self._set_callee(number, script)
        elif number in self._before_call_script:
            previous = self._before_call_script.pop(number)
            if previous is None:
                self.simulator.forget_callee(number)
            else:
                self.simulator.set_callee(number, previous)

    async def _until_stopped(self, activity: Any) -> None:
        limit = self._rt.settings.server.idle_exit_seconds
        retention = self._rt.settings.retention.days
        purged_at: float = -PURGE_EVERY_SECONDS
        reconciled_at = leased_at = self._rt.clock.monotonic()
        assert self.dialer is not None
        while not self.shutdown.is_set():
            now = self._rt.clock.monotonic()
            if now - purged_at >= PURGE_EVERY_SECONDS:
                purged_at = now
                await asyncio.to_thread(self._rt.calls.purge_expired, retention)
            if now - leased_at >= LEASE_EVERY_SECONDS:
                leased_at = now
                self._lease_home(self.dialer.owner)
                self.dialer.renew_leases()
            if now - reconciled_at >= RECONCILE_EVERY_SECONDS:
                reconciled_at = now
                await self.dialer.reconcile()
            try:
                await asyncio.wait_for(self.shutdown.wait(), 1.0)
            except TimeoutError:
                pass
            if self.dialer.registry.live() or (self.scheduler is not None and self.scheduler.pending()):
                activity.touch()  # live calls and scheduled ones keep the server up
            elif self._idle_exit and self._deployment is None and activity.idle_for() >= limit:
                log.info("no calls for %s s: exiting", limit)
                return


def configure_logging() -> None:
    """What the server says goes to stderr (logs/server.log for a background server).
    Request logs of HTTP clients stay quiet: webhook URLs carry per-call tokens."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "twilio.http_client", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve_forever(runner: ServerRunner) -> None:
    """Run in the foreground of this process until SIGINT/SIGTERM or the idle exit."""
    configure_logging()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, runner.shutdown.set)
        await runner.run()

    asyncio.run(main())


def _settings(config: Any, mode: str) -> dict[str, Any]:
    """What this server runs with (secrets masked) and its fingerprint, for the run file."""
    from twilio_caller.server.settings import fingerprint, fixed_settings, masked

    fixed = fixed_settings(config, mode)
    return {"settings": masked(fixed), "fingerprint": fingerprint(fixed)}


def _check_default_voice(settings: Settings) -> None:
    from twilio_caller import voices

    try:
        voices.check_voice(settings.voice.default)
    except InvalidInputError as exc:
        raise ConfigError(f"voice.default: {exc.message}") from exc


def _bind(host: str, port: int, key: str | None) -> Any:
    try:
        return bind(host, port)
    except PortInUse:
        raise ConfigError(
            f"port {port} on {host} is already in use by another program; "
            f"set {key} in config.yaml to a free port, or 0 to pick one"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); check {key}") from None


class ServerThread:
    """A server in a background thread of this process (the demo, tests). Clients find it
    through run/server.json exactly as they find a background server."""

    def __init__(self, runner: ServerRunner) -> None:
        self.runner = runner
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="twilio-caller server", daemon=True)

    def start(self, timeout: float = 30) -> ServerThread:
        self._thread.start()
        while not self._ready.wait(0.05):
            if not self._thread.is_alive() or timeout <= 0:
                break
            timeout -= 0.05
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise RuntimeError("the server thread did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.runner.shutdown.set)
        self._thread.join(30)

    def join(self, timeout: float) -> bool:
        """Wait for the server to exit by itself (the idle exit); True once it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await self.runner.run(self._ready)

        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to start(), which raises it in the caller
            self._error = exc

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
