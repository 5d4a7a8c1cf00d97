"""Serving ASGI apps (the simulator, or a test's TwiML app) with uvicorn on loopback:
inside a running event loop (`Server`), or in a background thread (`ThreadedServer`)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from starlette.types import ASGIApp

from twilio_caller import serving
from twilio_caller.simulator.core import Simulator
from twilio_caller.simulator.errors import ServeError

T = TypeVar("T")
STARTUP_SECONDS = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one. A taken port is a ServeError."""
    try:
        return serving.bind(host, port)
    except serving.PortInUse:
        raise ServeError(f"port {port} on {host} is already in use; pick another with --port") from None
    except OSError as error:
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


class Server:
    """Serve an ASGI app in the running loop: `async with Server(app) as server: server.base_url`.

    uvicorn's signal handlers are not installed: the host program owns Ctrl-C."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._listener: serving.Listener | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._listener = serving.Listener(self.app, sock)
        await self._listener.start()

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class SimulatorServer(Server):
    """Serve a Simulator in the running loop; stopping it also ends live calls."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(simulator.app, host, port)
        self.simulator = simulator

    async def stop(self) -> None:
        await self.simulator.aclose()
        await super().stop()

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self


class ThreadedServer:
    """Serve an ASGI app from its own event loop in a background thread (sync tests, demo).

    `with ThreadedServer(app) as server: server.base_url`; `server.run(coroutine)` runs a
    coroutine in that loop and returns its result."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = self._make_server(app, host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def _make_server(self, app: ASGIApp, host: str, port: int) -> Server:
        return Server(app, host, port)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        return self._server.base_url

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"asgi {self._server.host}", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_SECONDS):
            raise ServeError("the server did not start in time")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def stop(self) -> None:
        if self._loop is None or self._thread is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._loop = self._thread = None

    def run(self, work: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._loop is None:
            work.close()
            raise RuntimeError("the server is not running")
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self._server.start()
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._server.stop()

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


class SimulatorThread(ThreadedServer):
    """A Simulator served from a background thread: `with SimulatorThread(sim) as running:`."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        super().__init__(simulator.app, host, port)

    def _make_server(self, app: ASGIApp, host: str, port: int) -> Server:
        return SimulatorServer(self.simulator, host, port)

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self
