"""The control API: how tools in other processes reach live calls. It listens on its own
127.0.0.1 port (never the tunnelled one) and every request carries the server's token."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from twilio_caller import __version__
from twilio_caller.dialer import Dialer
from twilio_caller.errors import InternalError, InvalidInputError, TwilioCallerError
from twilio_caller.manifest import load_manifest
from twilio_caller.scheduler import Scheduler, is_scheduled_id

log = logging.getLogger("twilio_caller.control")
SERVER_TOOLS = ("call", "say", "wait", "hangup", "press", "call_status", "reconcile_calls")
HTTP_STATUS = {1: 500, 2: 400, 3: 403, 4: 502, 5: 500, 6: 404, 7: 503}
BeforeDial = Callable[[str, dict[str, Any] | None], None]


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
) -> Starlette:
    def allowed(request: Request) -> bool:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())

    async def health(request: Request) -> Response:
        if not allowed(request):
            return JSONResponse({"error": {"code": "forbidden", "message": "wrong token"}}, 403)
        return JSONResponse({"version": __version__, "mode": mode, "pid": os.getpid(),
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
            return JSONResponse({"error": {"code": "forbidden", "message": "wrong token"}}, 403)
        activity.in_flight += 1
        try:
            body = await _json(request)
            name = request.path_params["name"]
            if name not in SERVER_TOOLS:
                raise InvalidInputError(f"{name!r} is not a tool the server runs")
            arguments = load_manifest().tool(name).validate_arguments(body.get("arguments", {}))
            if name == "call":
                return await _call(dialer, arguments, body, request.query_params.get("stream") == "1",
                                   before_dial)
            if scheduler is not None and is_scheduled_id(arguments.get("call_id", "")):
                return JSONResponse(await _scheduled(scheduler, name, arguments))
            return JSONResponse(await _run(dialer, name, arguments))
        except TwilioCallerError as exc:
            return _error(exc)
        except Exception:
            log.exception("control request failed")
            return _error(InternalError("the server failed on this request; see `twilio-caller server logs`"))
        finally:
            activity.in_flight -= 1
            activity.touch()

    return Starlette(routes=[
        Route("/control/health", health),
        Route("/control/shutdown", stop, methods=["POST"]),
        Route("/control/reachability", reachability),
        Route("/control/tools/{name}", tool, methods=["POST"]),
    ])


async def _scheduled(scheduler: Scheduler, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """wait and call_status on a scheduled call's id; the live-call tools take a call_id."""
    match name:
        case "wait":
            return await scheduler.wait(arguments["call_id"], arguments["timeout_seconds"], arguments["until"])
        case "call_status":
            return scheduler.status(arguments["call_id"])
    raise InvalidInputError(f"{name} needs the call_id of a call; {arguments['call_id']} is a scheduled "
                            "call (call_status shows its calls)", field="call_id")


async def _run(dialer: Dialer, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    match name:
        case "say":
            return await dialer.say(arguments["call_id"], arguments["message"],
                                    arguments["expect_reply"], arguments["timeout_seconds"])
        case "wait":
            return await dialer.wait(arguments["call_id"], arguments["until"], arguments["timeout_seconds"])
        case "hangup":
            return await dialer.hangup(arguments["call_id"], arguments.get("message"))
        case "press":
            return await dialer.press(arguments["call_id"], arguments["digits"])
        case "reconcile_calls":
            return {"changed": [*dialer.take_unreported(), *await dialer.reconcile()]}
        case _:
            return dialer.status(arguments["call_id"])


async def _call(dialer: Dialer, arguments: dict[str, Any], body: dict[str, Any], stream: bool,
                before_dial: BeforeDial | None) -> Response:
    callee = body.get("callee")
    hook = (lambda number: before_dial(number, callee)) if before_dial else None
    session = await dialer.call(arguments, before_dial=hook)
    outcome = asyncio.ensure_future(
        dialer.first_result(session, wait=arguments["wait"], timeout=arguments["timeout_seconds"])
    )
    if not stream:
        return JSONResponse(await outcome)

    async def lines() -> AsyncIterator[bytes]:
        sent = 0
        while True:
            session.progressed.clear()
            for event in session.events[sent:]:
                yield _line({"progress": event})
            sent = len(session.events)
            if outcome.done():
                break
            waiter = asyncio.ensure_future(session.progressed.wait())
            await asyncio.wait([outcome, waiter], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        for event in session.events[sent:]:
            yield _line({"progress": event})
        yield _line({"result": outcome.result()})

    return StreamingResponse(lines(), media_type="application/x-ndjson")


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


def _error(error: TwilioCallerError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=HTTP_STATUS.get(error.exit_code, 500))


def _line(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode() + b"\n"

