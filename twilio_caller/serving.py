"""Serving ASGI apps with uvicorn on sockets bound beforehand, so a port is known (and a
busy one reported clearly) before anything is built around it."""

from __future__ import annotations

import asyncio
import errno
import socket

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

WS_MAX_BYTES = 64 * 1024  # a WebSocket message (ConversationRelay's are small JSON) at most this
REQUEST_READ_SECONDS = 5.0  # a request's headers and body arrive within this, or it is cut off


class PortInUse(OSError):
    pass


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio then sets TCP_NODELAY on accepted connections, so small
    # answers are not held back ~40 ms by delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(error.errno, f"port {port} on {host} is already in use") from None
        raise
    sock.setblocking(False)
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def deadline_protocol(read_seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's HTTP protocol with a read deadline: a request's headers and body must arrive
    within `read_seconds` of its first byte (or of the connection, for a client that sends
    nothing), else the connection is closed. A slow or stalled client costs a socket for
    seconds, never a request handler; a held (long-poll) answer is not affected: the deadline
    ends once the request is read."""

    class DeadlineProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        def handle_websocket_upgrade(self) -> None:
            self._disarm()  # a WebSocket (ConversationRelay) lives as long as its call
            super().handle_websocket_upgrade()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(read_seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return DeadlineProtocol


class Listener:
    """One uvicorn server on one bound socket, inside the running event loop."""

    def __init__(self, app: ASGIApp, sock: socket.socket, *,
                 read_seconds: float = REQUEST_READ_SECONDS) -> None:
        self.socket = sock
        config = uvicorn.Config(
            app, lifespan="off", log_level="warning", access_log=False,
            timeout_graceful_shutdown=2, timeout_keep_alive=30, http=deadline_protocol(read_seconds),
            ws_max_size=WS_MAX_BYTES,
        )
        config.load()
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    async def start(self) -> None:
        await self._server.startup(sockets=[self.socket])
        self._task = asyncio.create_task(self._server.main_loop())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        await self._server.shutdown(sockets=[self.socket])
        self._task = None
