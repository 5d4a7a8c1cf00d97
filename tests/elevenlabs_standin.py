"""A stand-in for the ElevenLabs text-to-speech API, on loopback: it records requests and
answers with a small valid MP3, an error status, slowly, or never."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "sk_test_0123456789abcdef0123456789abcdef"
VOICE_ID = "JBFqnCBsd6RMkjVDRZzb"


def silent_mp3(frames: int = 8) -> bytes:
    """MPEG-2 layer III, 32 kbit/s, 22.05 kHz, mono: 104-byte frames of silence."""
    header = bytes((0xFF, 0xF3, 0x40, 0xC0))
    return (header + bytes(100)) * frames


MP3 = silent_mp3()


class StandIn:
    """POST /v1/text-to-speech/{voice_id}, answering as `mode` says."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.mode: str | int = "audio"  # audio | slow | never | an HTTP status
        self.body, self.content_type = MP3, "audio/mpeg"
        self.release = asyncio.Event()  # lets a slow answer go
        self.arrived = asyncio.Event()
        self.base_url = ""
        self.app = Starlette(routes=[Route("/v1/text-to-speech/{voice_id}", self.tts, methods=["POST"])])

    async def tts(self, request: Request) -> Response:
        self.requests.append({
            "voice_id": request.path_params["voice_id"], "query": dict(request.query_params),
            "headers": dict(request.headers), "json": await request.json(),
        })
        self.arrived.set()
        if self.mode in ("slow", "never"):
            await self.release.wait()
        if isinstance(self.mode, int):
            detail = {"status": "error", "message": f"stand-in says {self.mode}"}
            headers = {"Retry-After": "7"} if self.mode == 429 else None
            return JSONResponse({"detail": detail}, status_code=self.mode, headers=headers)
        return Response(self.body, media_type=self.content_type)
