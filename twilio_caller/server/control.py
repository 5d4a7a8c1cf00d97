"""The control API: how tools in other processes reach live calls. It listens on its own
127.0.0.1 port (never the tunnelled one) and every request carries the server's token."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from twilio_caller import __version__
from twilio_caller.dialer import Dialer
from twilio_caller.errors import ForbiddenError, InvalidInputError, TwilioCallerError, reported
from twilio_caller.manifest import ToolSpec, load_manifest
from twilio_caller.scheduler import Scheduler
from twilio_caller.server.handlers import BeforeDial, Served

log = logging.getLogger("twilio_caller.control")


class Activity:
    """When the server last did something for anyone (for the idle exit)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.in_flight = 0
        self.last = now()

    def touch(self) -> None:
        self.last = self._now()

    def idle_for(self) -> float:
        return 0.0 if self.in_flight else self._now() - self.last


def build_control_app(
    dialer: Dialer,
    token: str,
    mode: str,
    activity: Activity,
    shutdown: asyncio.Event,
    before_dial: BeforeDial | None = None,
    scheduler: Scheduler | None = None,
    instance_id: str | None = None,
) -> Starlette:
    def allowed(request: Request) -> bool:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())

    async def health(request: Request) -> Response:
        if not allowed(request):
            return error_response(ForbiddenError("wrong token"))
        return JSONResponse({"version": __version__, "mode": mode, "pid": os.getpid(), "instance_id": instance_id,
                             "live_calls": len(dialer.registry.live()),
                             "live_call_ids": [session.call_id for session in dialer.registry.live()]})

    async def stop(request: Request) -> Response:
        if not allowed(request):
            return Response(status_code=403)
        shutdown.set()
        return JSONResponse({"stopping": True})

    async def reachability(request: Request) -> Response:
        if not allowed(request):
            return Response(status_code=403)
        return JSONResponse(await _reachable(dialer.urls.ping()))

    async def tool(request: Request) -> Response:
        if not allowed(request):
            return error_response(ForbiddenError("wrong token"))
        activity.in_flight += 1
        try:
            body = await _json(request)
            spec, served = served_tool(request.path_params["name"])
            arguments = spec.validate_arguments(body.get("arguments", {}))
            context = Served(dialer, scheduler, before_dial, body, request.query_params.get("stream") == "1")
            result = await served(context, **arguments)
            return result if isinstance(result, Response) else JSONResponse(result)
        except Exception as exc:  # noqa: BLE001 - the boundary: an error document, never a traceback
            return error_response(reported(exc, _logged))
        finally:
            activity.in_flight -= 1
            activity.touch()

    return Starlette(routes=[
        Route("/control/health", health),
        Route("/control/shutdown", stop, methods=["POST"]),
        Route("/control/reachability", reachability),
        Route("/control/tools/{name}", tool, methods=["POST"]),
    ])


async def _reachable(url: str) -> dict[str, Any]:
    """Whether the public URL leads back here, asked the way Twilio would reach it."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5, trust_env=False, follow_redirects=True) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return {"url": url, "reachable": False, "detail": type(exc).__name__}
    ours = response.status_code == 200 and response.text == "twilio-caller"
    return {"url": url, "reachable": ours,
            "detail": "ok" if ours else f"HTTP {response.status_code} from something else"}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"the request body is not JSON: {exc.msg}") from exc
    if not isinstance(body, dict):
        raise InvalidInputError("the request body must be a JSON object")
    return body


def served_tool(name: str) -> tuple[ToolSpec, Callable[..., Awaitable[Any]]]:
    """The manifest's tool `name` and the server's implementation of it (skill.yaml `served_by`);
    InvalidInputError for a tool the server does not run."""
    spec = load_manifest().tools.get(name)
    served = spec.server_function if spec is not None else None
    if spec is None or served is None:
        raise InvalidInputError(f"{name!r} is not a tool the server runs")
    return spec, served


def error_response(error: TwilioCallerError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.http_status)


def _logged(error: BaseException) -> str:
    log.error("control request failed", exc_info=error)
    return "the server failed on this request; see `twilio-caller server logs`"

