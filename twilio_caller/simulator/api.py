"""The REST Calls API as an ASGI app: `/2010-04-01/Accounts/{AccountSid}/Calls…json`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from twilio_caller.simulator.errors import AUTHENTICATE, NOT_FOUND, ApiError
from twilio_caller.simulator.listing import build_filters, page
from twilio_caller.simulator.params import parse_create, parse_update
from twilio_caller.simulator.records import API_VERSION

if TYPE_CHECKING:
    from twilio_caller.simulator.core import Simulator

CALLS = f"/{API_VERSION}/Accounts/{{account_sid}}/Calls.json"
CALL = f"/{API_VERSION}/Accounts/{{account_sid}}/Calls/{{call_sid}}.json"


def build_app(simulator: Simulator) -> Starlette:
    api = _CallsApi(simulator)
    routes = [
        Route(CALLS, api.create, methods=["POST"]),
        Route(CALLS, api.list, methods=["GET"]),
        Route(CALL, api.fetch, methods=["GET"]),
        Route(CALL, api.update, methods=["POST"]),
        Route(CALL, api.delete, methods=["DELETE"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if error.status == 401 else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        body = ApiError(404, NOT_FOUND, f"The requested resource {request.url.path} was not found").body()
    else:
        body = {"code": error.status_code, "message": str(error.detail), "more_info": "", "status": error.status_code}
    return JSONResponse(body, status_code=error.status_code)


class _CallsApi:
    def __init__(self, simulator: Simulator) -> None:
        self._simulator = simulator

    def _authenticate(self, request: Request) -> None:
        username, password = _basic_credentials(request.headers.get("authorization", ""))
        simulator = self._simulator
        valid = secrets.compare_digest(username.encode(), simulator.account_sid.encode()) and secrets.compare_digest(
            password.encode(), simulator.auth_token.encode()
        )
        if not valid or request.path_params["account_sid"] != simulator.account_sid:
            raise ApiError(401, AUTHENTICATE, "Authenticate")

    async def create(self, request: Request) -> Response:
        self._authenticate(request)
        form = await request.form()
        failure = self._simulator.chaos.take_create_failure()
        if failure is not None:
            raise failure
        dialing = parse_create(form, self._simulator.policy)
        record = self._simulator.place_call(dialing, str(request.base_url))
        failure = self._simulator.chaos.take_failure_after_create()
        if failure is not None:
            raise failure
        return JSONResponse(record.to_json(), status_code=201)

    async def fetch(self, request: Request) -> Response:
        self._authenticate(request)
        gate = self._simulator.chaos.fetch_gate
        if gate is not None:
            await asyncio.to_thread(gate.wait, 30)
        record = self._simulator.call(request.path_params["call_sid"])
        record.fetches += 1
        return JSONResponse(record.to_json())

    async def update(self, request: Request) -> Response:
        self._authenticate(request)
        form = await request.form()
        sid = request.path_params["call_sid"]
        self._simulator.call(sid)
        record = self._simulator.update_call(sid, parse_update(form))
        return JSONResponse(record.to_json())

    async def delete(self, request: Request) -> Response:
        self._authenticate(request)
        self._simulator.delete_call(request.path_params["call_sid"])
        return Response(status_code=204)

    async def list(self, request: Request) -> Response:
        self._authenticate(request)
        query = dict(request.query_params)
        filters = build_filters(query)
        records = [record for record in reversed(self._simulator.calls) if all(match(record) for match in filters)]
        return JSONResponse(page(records, query, request.url.path))


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password
