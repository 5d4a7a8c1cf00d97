"""The webhook's route table — /twilio/{call_id}/{token}/voice|gather|hold|status|amd, a contract
whose paths never change (amd, asynchronous machine detection's result, was added by issue 16) — and every webhook URL, built from it by name (`url_path_for`).

The table is one constant: the app serves it (its endpoints find their handlers on the app's
state) and `WebhookUrls` builds URLs from the same routes, so the layout is written once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router, WebSocketRoute
from starlette.websockets import WebSocket

from twilio_caller.transport.port import CallLine

PREFIX = "/twilio/{call_id}/{token}"
CALL_ROUTES = ("voice", "gather", "hold", "status", "amd")


class Endpoints(Protocol):
    """The handlers of a call's webhook requests (the app keeps them in `state.endpoints`)."""

    async def voice(self, request: Request) -> Response: ...
    async def gather(self, request: Request) -> Response: ...
    async def hold(self, request: Request) -> Response: ...
    async def status(self, request: Request) -> Response: ...
    async def handoff(self, request: Request) -> Response: ...
    async def relay(self, websocket: WebSocket) -> None: ...
    async def amd(self, request: Request) -> Response: ...


def _endpoints(request: Request) -> Endpoints:
    return cast(Endpoints, request.app.state.endpoints)


async def _voice(request: Request) -> Response:
    return await _endpoints(request).voice(request)


async def _gather(request: Request) -> Response:
    return await _endpoints(request).gather(request)


async def _hold(request: Request) -> Response:
    return await _endpoints(request).hold(request)


async def _status(request: Request) -> Response:
    return await _endpoints(request).status(request)


async def _handoff(request: Request) -> Response:
    return await _endpoints(request).handoff(request)


async def _relay(websocket: WebSocket) -> None:
    await cast(Endpoints, websocket.app.state.endpoints).relay(websocket)


async def _amd(request: Request) -> Response:
    return await _endpoints(request).amd(request)


async def _ping(request: Request) -> Response:
    return Response("twilio-caller", media_type="text/plain")


ROUTES: list[BaseRoute] = [
    Route("/twilio/ping", _ping, methods=["GET"], name="ping"),
    Route(f"{PREFIX}/voice", _voice, methods=["GET", "POST"], name="voice"),
    Route(f"{PREFIX}/gather", _gather, methods=["POST"], name="gather"),
    Route(f"{PREFIX}/hold", _hold, methods=["POST"], name="hold"),
    Route(f"{PREFIX}/status", _status, methods=["POST"], name="status"),
    # ConversationRelay (issue 17): the call's socket, and the <Connect action> asked at its end
    WebSocketRoute("/relay/{call_id}/{token}", _relay, name="relay"),
    Route(f"{PREFIX}/handoff", _handoff, methods=["POST"], name="handoff"),
    Route(f"{PREFIX}/amd", _amd, methods=["POST"], name="amd"),
]


class WebhookUrls:
    """The public URLs Twilio is given for a call (the tunnel's base + a named route)."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        self._router = Router(routes=list(ROUTES))

    @property
    def base_url(self) -> str:
        return self._base

    def url(self, line: CallLine, route: str, query: Mapping[str, str] | None = None) -> str:
        path = self._router.url_path_for(route, call_id=line.call_id, token=line.token)
        return self._base + str(path) + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")

    def socket_url(self, line: CallLine, query: Mapping[str, str] | None = None) -> str:
        """The call's relay socket URL (ConversationRelay `url`), on the public base as wss."""
        return socket_base(self._base) + self.url(line, "relay", query).removeprefix(self._base)

    def ping(self) -> str:
        """The URL that proves the public base leads back to this server (the doctor asks it)."""
        return self._base + str(self._router.url_path_for("ping"))

    def numbered(self, line: CallLine, route: str, number: int) -> str:
        """A gather or hold URL with its sequence number (`?n=N`)."""
        return self.url(line, route, {"n": str(number)})


def socket_base(public_base_url: str) -> str:
    """The public base as a WebSocket base: https → wss (Twilio's case), http → ws (loopback)."""
    scheme, _, rest = public_base_url.rstrip("/").partition("://")
    return ("wss" if scheme == "https" else "ws") + "://" + rest
