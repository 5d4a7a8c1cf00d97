"""A small TwiML application for the simulator's tests: answers with VoiceResponse
documents from per-path handlers and validates every request's X-Twilio-Signature."""

from __future__ import annotations

import asyncio
import inspect
import io
import threading
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Union

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse


@dataclass(frozen=True)
class Received:
    path: str
    method: str
    url: str
    params: dict[str, str]
    signature_valid: bool
    user_agent: str


Answer = Union[VoiceResponse, Response, str]
Handler = Callable[[Received], Union[Answer, Awaitable[Answer]]]


def twiml(response: VoiceResponse | str) -> Response:
    return Response(str(response), media_type="text/xml")


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(1)
        audio.setframerate(rate)
        audio.writeframes(b"\x80" * int(seconds * rate))
    return buffer.getvalue()


class TwimlApp:
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._handlers: dict[str, Handler] = {}
        self._received: list[Received] = []
        self._changed = threading.Condition()
        self._release: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.base_url = ""
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def on(self, path: str, handler: Handler) -> None:
        self._handlers[path] = handler

    def say(self, path: str, build: Callable[[VoiceResponse], object]) -> None:
        """Answer `path` with a fixed document built by `build(response)`."""

        def handler(_: Received) -> VoiceResponse:
            response = VoiceResponse()
            build(response)
            return response

        self.on(path, handler)

    async def hold(self) -> Response:
        """Never answer (until the app stops): a webhook slower than any limit."""
        assert self._release is not None
        await self._release.wait()
        return twiml(VoiceResponse())

    @property
    def received(self) -> list[Received]:
        with self._changed:
            return list(self._received)

    def requests_to(self, path: str) -> list[Received]:
        return [item for item in self.received if item.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        with self._changed:
            done = self._changed.wait_for(lambda: len(self._matching(path)) >= count, timeout)
            if not done:
                raise TimeoutError(f"{path}: {len(self._matching(path))} of {count} requests after {timeout} s")
            return self._matching(path)

    def release_held(self) -> None:
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    def _matching(self, path: str) -> list[Received]:
        return [item for item in self._received if item.path == path]

    async def _handle(self, request: Request) -> Response:
        if self._release is None:
            self._loop, self._release = asyncio.get_running_loop(), asyncio.Event()
        params = {key: str(value) for key, value in (await request.form()).items()} if request.method == "POST" else {}
        signature = request.headers.get("x-twilio-signature", "")
        received = Received(
            path=request.url.path,
            method=request.method,
            url=str(request.url),
            params=params if request.method == "POST" else dict(request.query_params),
            signature_valid=self._validator.validate(str(request.url), params, signature),
            user_agent=request.headers.get("user-agent", ""),
        )
        with self._changed:
            self._received.append(received)
            self._changed.notify_all()
        if not received.signature_valid:
            return Response("bad signature", status_code=403)
        handler = self._handlers.get(received.path)
        if handler is None:
            return Response("not found", status_code=404)
        answer = handler(received)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer if isinstance(answer, Response) else twiml(answer)
