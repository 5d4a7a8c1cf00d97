"""ElevenLabs audio for calls: generated through the ElevenLabs HTTP API, cached on disk under
`$TWILIO_CALLER_HOME/audio/`, served to Twilio's <Play> under an unguessable path.

- `AudioLibrary.get_or_generate(text, budget)` answers from the cache, or waits for the API at
  most `budget` seconds; past it (or on any failure) it returns a `Fallback` that says why, and
  the caller uses <Say>. Generation that outlives the budget goes on in the background, so
  the next request for the same text hits the cache.
- `ElevenLabs` is the only code that talks to the API; its failures become a `SynthesisError`
  with a stable reason there and nowhere else. The API key travels only in the `xi-api-key`
  header: never in a log line, an error, a file or a URL.
- Cache files are named by a SHA-256 of (text, voice, model, output format, voice settings)
  and written atomically (temporary file + rename). They are served as
  `/audio/{token}/{key}.{ext}`, where `token` is a random per-install secret kept in
  `audio/serving-token` (delete the file to rotate it).
- Phone-suitable output: `mp3_22050_32` (MP3, 22.05 kHz, 32 kbit/s, served as audio/mpeg), or
  `ulaw_8000` (the telephone network's own 8 kHz μ-law, wrapped here in a WAV header and
  served as audio/wav). Both are types Twilio's <Play> accepts; the bytes are checked to be
  what the format promises before anything is cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import secrets
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route, Router

from twilio_caller.config import Config
from twilio_caller.errors import ConfigError, InvalidInputError
from twilio_caller.settings import ElevenLabsSettings, Settings

log = logging.getLogger("twilio_caller.audio")

MAX_TEXT_CHARS = 2500  # under every ElevenLabs model's per-request limit; a call says far less
MAX_AUDIO_BYTES = 8 * 1024 * 1024
MAX_ERROR_BYTES = 16 * 1024
REQUEST_TIMEOUT_SECONDS = 30.0  # background generation gives up after this
CONNECT_TIMEOUT_SECONDS = 5.0
CACHE_VERSION = 1
TOKEN_FILE = "serving-token"
CACHE_CONTROL = "public, max-age=31536000, immutable"  # a file's content never changes under its name
FALLBACK_REASONS = ("disabled", "no-api-key", "too-long", "unauthorized", "rate-limited",
                    "server-error", "rejected", "unreachable", "timeout", "bad-audio")


# -- results -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Audio:
    """Audio ready to be played: a file in the cache."""

    key: str
    path: Path
    media_type: str
    from_cache: bool

    @property
    def file_name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Fallback:
    """No audio: use <Say>. `reason` is one of FALLBACK_REASONS; `detail` is for people."""

    reason: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "detail": self.detail}


class SynthesisError(Exception):
    """The API gave no usable audio. Raised by `ElevenLabs`, turned into a Fallback by the library."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    def fallback(self) -> Fallback:
        return Fallback(self.reason, self.detail)


# -- formats --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AudioFormat:
    name: str  # ElevenLabs' output_format
    media_type: str  # what the audio route serves
    extension: str
    prepare: Callable[[bytes], bytes]  # the API's bytes → the file to store; BadAudio if they aren't audio


class BadAudio(ValueError):
    pass


_V1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_V2_L3_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_frame_length(header: bytes) -> int | None:
    """Length in bytes of the MPEG layer III frame this 4-byte header starts, else None."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 0b11, (header[1] >> 1) & 0b11
    bitrate_index, rate_index = header[2] >> 4, (header[2] >> 2) & 0b11
    if version == 1 or layer != 0b01 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    kbps = (_V1_L3_KBPS if version == 3 else _V2_L3_KBPS)[bitrate_index]
    samples_factor = 144 if version == 3 else 72
    return samples_factor * kbps * 1000 // _MPEG_RATES[version][rate_index] + ((header[2] >> 1) & 1)


def _check_mp3(data: bytes) -> bytes:
    start = _after_id3(data)
    length = mp3_frame_length(data[start:start + 4])
    if length is None:
        raise BadAudio("not MP3 audio: no MPEG layer III frame where the audio should start")
    if len(data) < start + length:
        raise BadAudio("truncated MP3 audio: shorter than its first frame")
    following = data[start + length:start + length + 4]
    if len(following) == 4 and not following.startswith(b"TAG") and mp3_frame_length(following) is None:
        raise BadAudio("not MP3 audio: the first frame is not followed by another")
    return data


def _after_id3(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]  # syncsafe integer
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _ulaw_in_wav(data: bytes) -> bytes:
    """Raw 8 kHz mono μ-law → a WAV file (WAVE_FORMAT_MULAW) that <Play> accepts."""
    head = data[:64].lstrip()
    if not data or head[:1] in (b"{", b"<") or data[:4] == b"RIFF" or data[:3] == b"ID3":
        raise BadAudio("not raw μ-law audio")
    fmt = struct.pack("<HHIIHHH", 7, 1, 8000, 8000, 1, 8, 0)  # μ-law, mono, 8 kHz, 8 bit, cbSize 0
    fact = struct.pack("<I", len(data))  # non-PCM WAV files carry their sample count
    chunks = (b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
              + b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b""))
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


FORMATS = {
    "mp3_22050_32": AudioFormat("mp3_22050_32", "audio/mpeg", "mp3", _check_mp3),
    "ulaw_8000": AudioFormat("ulaw_8000", "audio/wav", "wav", _ulaw_in_wav),
}
MEDIA_TYPES = {audio_format.extension: audio_format.media_type for audio_format in FORMATS.values()}
_SERVED_NAME = re.compile(r"^[0-9a-f]{64}\.(" + "|".join(MEDIA_TYPES) + r")$")


# -- settings --------------------------------------------------------------------------------------

def audio_format(settings: ElevenLabsSettings) -> AudioFormat:
    """The format `elevenlabs.output_format` names; ConfigError for one this package cannot serve."""
    try:
        return FORMATS[settings.output_format]
    except KeyError:
        raise ConfigError(
            f"elevenlabs.output_format {settings.output_format!r} is not one of {', '.join(FORMATS)}"
        ) from None


def unavailable(settings: ElevenLabsSettings) -> Fallback | None:
    """Why ElevenLabs cannot be asked at all (no voice, no key), else None."""
    if not settings.voice_id:
        return Fallback("disabled", "no elevenlabs.voice_id is configured")
    if not settings.api_key:
        return Fallback("no-api-key", "set ELEVENLABS_API_KEY (or elevenlabs.api_key) to use ElevenLabs voices")
    return None


# -- the API client ----------------------------------------------------------------------------------

class ElevenLabs:
    """POST {api_base_url}/v1/text-to-speech/{voice_id}?output_format=… → checked audio bytes."""

    def __init__(
        self,
        settings: ElevenLabsSettings,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._format = audio_format(settings)
        self._http = httpx.AsyncClient(
            base_url=settings.api_base_url.rstrip("/"),
            headers={"xi-api-key": settings.api_key or "", "Accept": f"{self._format.media_type}, */*;q=0.1"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS)),
            transport=transport,
        )

    async def synthesize(self, text: str) -> bytes:
        voice = quote(self._settings.voice_id or "", safe="")
        try:
            async with self._http.stream(
                "POST", f"/v1/text-to-speech/{voice}",
                params={"output_format": self._format.name}, json=self._body(text),
            ) as response:
                if response.status_code != 200:
                    raise _status_error(response.status_code, response.headers, await _read(response, MAX_ERROR_BYTES))
                _check_content_type(response.headers.get("content-type", ""))
                data = await _read(response, MAX_AUDIO_BYTES, strict=True)
        except httpx.TimeoutException:
            raise SynthesisError("timeout", "ElevenLabs did not answer in time") from None
        except httpx.HTTPError as exc:
            raise SynthesisError("unreachable", f"cannot reach ElevenLabs ({type(exc).__name__})") from None
        try:
            return self._format.prepare(data)
        except BadAudio as exc:
            raise SynthesisError("bad-audio", f"ElevenLabs sent {len(data)} bytes that are {exc}") from None

    def _body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if self._settings.model:
            body["model_id"] = self._settings.model
        if self._settings.voice_settings:
            body["voice_settings"] = dict(self._settings.voice_settings)
        return body

    async def aclose(self) -> None:
        await self._http.aclose()


async def _read(response: httpx.Response, limit: int, *, strict: bool = False) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if strict:
                raise SynthesisError("bad-audio", f"ElevenLabs sent more than {limit} bytes of audio")
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _check_content_type(content_type: str) -> None:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type and not media_type.startswith("audio/") and media_type != "application/octet-stream":
        raise SynthesisError("bad-audio", f"ElevenLabs answered with {media_type}, not audio")


def _status_error(status: int, headers: httpx.Headers, body: bytes) -> SynthesisError:
    said = _api_message(body)
    if status in (401, 403):
        return SynthesisError("unauthorized", f"ElevenLabs refused the API key (HTTP {status}){said}; check ELEVENLABS_API_KEY")
    if status == 429:
        retry = headers.get("retry-after")
        return SynthesisError("rate-limited", f"ElevenLabs is rate limiting (HTTP 429){said}"
                              + (f"; retry after {retry} s" if retry else ""))
    if status >= 500:
        return SynthesisError("server-error", f"ElevenLabs failed (HTTP {status}){said}")
    return SynthesisError("rejected", f"ElevenLabs rejected the request (HTTP {status}){said}")


def _api_message(body: bytes) -> str:
    """': <message>' from an ElevenLabs error body ({"detail": {"message": …}} or {"detail": "…"})."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return ""
    message = detail.get("message") if isinstance(detail, dict) else detail
    return f": {' '.join(str(message).split())[:200]}" if isinstance(message, str) and message else ""


# -- the library: cache, budget, background generation ---------------------------------------------------

class AudioLibrary:
    def __init__(
        self,
        home: Path,
        settings: ElevenLabsSettings,
        *,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.directory = home / "audio"
        self.settings = settings
        self.format = audio_format(settings)
        self._request_timeout, self._transport = request_timeout, transport
        self._client: ElevenLabs | None = None  # made on first use: listing the cache opens no connection
        self._pending: dict[str, asyncio.Task[Audio]] = {}
        self._token: str | None = None

    @classmethod
    def from_config(cls, config: Config, **options: Any) -> AudioLibrary:
        return cls(config.home, config.settings.elevenlabs, **options)

    # what callers use --------------------------------------------------------------------------

    async def get_or_generate(self, text: str, budget_seconds: float | None = None) -> Audio | Fallback:
        """Audio for `text` within the budget (default elevenlabs.budget_seconds), else a Fallback.
        Never raises for the API's failures and never waits past the budget."""
        unavailable_now = unavailable(self.settings)
        if unavailable_now is not None:
            return unavailable_now
        try:
            key = self.key_for(text)
        except InvalidInputError as exc:
            return Fallback("too-long" if text.strip() else "rejected", exc.message)
        hit = self.cached(key)
        if hit is not None:
            return hit
        budget = self.settings.budget_seconds if budget_seconds is None else budget_seconds
        try:
            return await asyncio.wait_for(asyncio.shield(self._generation(key, text)), max(budget, 0))
        except TimeoutError:
            return Fallback("timeout", f"no audio within {budget:g} s; it is still being generated for next time")
        except SynthesisError as exc:
            return exc.fallback()

    async def generate(self, text: str) -> Audio:
        """Audio for `text`, however long it takes (pre-generation, `phrases generate`).
        InvalidInputError for bad text, SynthesisError when the API gives no audio."""
        unavailable_now = unavailable(self.settings)
        if unavailable_now is not None:
            raise SynthesisError(unavailable_now.reason, unavailable_now.detail)
        key = self.key_for(text)
        hit = self.cached(key)
        if hit is not None:
            return hit
        return await asyncio.shield(self._generation(key, text))

    def lookup(self, text: str) -> Audio | None:
        """Cached audio for `text`, without asking the API (the phrase library at call time)."""
        if unavailable(self.settings) is not None:
            return None
        try:
            return self.cached(self.key_for(text))
        except InvalidInputError:
            return None

    def url_for(self, audio: Audio, base_url: str) -> str:
        """The public URL of a clip, built from the named audio route this library serves."""
        path = Router(routes=audio_routes(self)).url_path_for(AUDIO_ROUTE, token=self.token, file=audio.file_name)
        return base_url.rstrip("/") + str(path)

    async def wait_for_pending(self) -> None:
        """Let background generation finish (tests, a graceful shutdown)."""
        await asyncio.gather(*self._pending.values(), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        await self.wait_for_pending()
        if self._client is not None:
            await self._client.aclose()

    # the cache -------------------------------------------------------------------------------------

    def key_for(self, text: str) -> str:
        spoken = check_text(text)
        identity = {
            "v": CACHE_VERSION, "text": spoken, "voice_id": self.settings.voice_id,
            "model": self.settings.model, "format": self.format.name,
            "voice_settings": dict(self.settings.voice_settings or {}),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def cached(self, key: str) -> Audio | None:
        path = self.directory / f"{key}.{self.format.extension}"
        return Audio(key, path, self.format.media_type, from_cache=True) if path.is_file() else None

    def entries(self) -> list[dict[str, Any]]:
        """What the cache holds, from each file's metadata sidecar."""
        found = []
        for meta in sorted(self.directory.glob("*.json")):
            try:
                entry = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(entry, dict):
                continue
            audio = self.directory / str(entry.get("file", ""))
            if _SERVED_NAME.match(audio.name) and audio.is_file():
                entry["bytes"] = audio.stat().st_size
                found.append(entry)
        return found

    @property
    def token(self) -> str:
        """The per-install secret part of every audio URL."""
        if self._token is None:
            self._token = _read_or_create_token(self._ensure_directory() / TOKEN_FILE)
        return self._token

    def file_for(self, token: str, file_name: str) -> Path | None:
        """The cached file a request names, or None (wrong token, a name we never serve)."""
        if not secrets.compare_digest(token.encode(), self.token.encode()) or not _SERVED_NAME.match(file_name):
            return None
        path = self.directory / file_name
        return path if path.is_file() else None

    # generation ------------------------------------------------------------------------------------

    def _generation(self, key: str, text: str) -> asyncio.Task[Audio]:
        """The one task generating `key`: concurrent requests for a text share it."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._generate(key, " ".join(text.split())), name=f"elevenlabs {key[:12]}")
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        return task

    async def _generate(self, key: str, text: str) -> Audio:
        if self._client is None:
            self._client = ElevenLabs(self.settings, timeout=self._request_timeout, transport=self._transport)
        data = await self._client.synthesize(text)
        path = self._ensure_directory() / f"{key}.{self.format.extension}"
        meta = {
            "key": key, "file": path.name, "text": text, "voice_id": self.settings.voice_id,
            "model": self.settings.model, "output_format": self.format.name,
            "media_type": self.format.media_type,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        await asyncio.to_thread(_store, path, data, meta)
        return Audio(key, path, self.format.media_type, from_cache=False)

    def _settled(self, key: str, task: asyncio.Task[Audio]) -> None:
        self._pending.pop(key, None)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, SynthesisError):
            log.warning("ElevenLabs audio not generated (%s): %s", error.reason, error.detail)
        elif error is not None:
            log.error("ElevenLabs audio generation failed: %r", error)

    def _ensure_directory(self) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.directory


def check_text(text: str) -> str:
    """The text as it will be spoken (whitespace collapsed); InvalidInputError if it can't be."""
    spoken = " ".join(text.split())
    if not spoken:
        raise InvalidInputError("there is no text to turn into audio", field="text")
    if len(spoken) > MAX_TEXT_CHARS:
        raise InvalidInputError(
            f"the text is {len(spoken)} characters; ElevenLabs audio is made for at most {MAX_TEXT_CHARS}",
            field="text",
        )
    return spoken


def _store(path: Path, data: bytes, meta: Mapping[str, Any]) -> None:
    _write_atomic(path, data)
    _write_atomic(path.with_suffix(".json"), json.dumps(dict(meta), ensure_ascii=False).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _read_or_create_token(path: Path) -> str:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text(encoding="ascii").strip()
        if len(token) >= 32:
            return token
        path.unlink(missing_ok=True)  # empty or cut short: replace it
        return _read_or_create_token(path)
    token = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w", encoding="ascii") as stream:
        stream.write(token)
    return token


AUDIO_ROUTE = "audio"


# -- serving ---------------------------------------------------------------------------------------------

def audio_routes(library: AudioLibrary) -> list[Route]:
    """GET/HEAD /audio/{token}/{file}: the cached file with its audio type; Range requests are
    answered 206 (Starlette's FileResponse). Anything else is a 404 that says nothing."""

    async def serve(request: Request) -> Response:
        path = library.file_for(request.path_params["token"], request.path_params["file"])
        if path is None:
            return Response(status_code=404)
        try:
            stat = path.stat()
        except OSError:
            return Response(status_code=404)
        media_type = MEDIA_TYPES[path.suffix.lstrip(".")]
        return FileResponse(path, media_type=media_type, stat_result=stat,
                            headers={"Cache-Control": CACHE_CONTROL})

    return [Route("/audio/{token}/{file}", serve, methods=["GET", "HEAD"], name=AUDIO_ROUTE)]


# -- the phrase library ----------------------------------------------------------------------------------

def phrases_from_settings(settings: Settings, extra: Iterable[str] = ()) -> list[str]:
    """The phrases to pre-generate: config `phrases`, the opening and
    the closing, and `extra` (e.g. the conversation's fixed lines), names filled in, once each."""
    texts = [*settings.phrases, settings.identity.opening, settings.conversation.closing, *extra]
    filled = [" ".join(settings.identity.fill(text).split()) for text in texts]
    return list(dict.fromkeys(text for text in filled if text))


async def generate_phrases(
    library: AudioLibrary,
    phrases: Iterable[str],
    progress: Callable[[int, int, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Generate every phrase not yet cached, one at a time (polite to the API's concurrency
    limits). Returns one row per phrase: {text, status: cached|generated|failed, file, reason,
    detail}. ConfigError when ElevenLabs is not set up or refuses the key; InvalidInputError,
    before anything is generated, for a phrase that cannot be."""
    off = unavailable(library.settings)
    if off is not None:
        raise ConfigError(f"cannot generate phrases: {off.detail}")
    texts = [check_text(text) for text in phrases]
    rows = []
    for done, text in enumerate(texts, start=1):
        rows.append(await _generate_one(library, text))
        if rows[-1]["reason"] == "unauthorized":
            raise ConfigError(f"cannot generate phrases: {rows[-1]['detail']}")
        if progress is not None:
            progress(done, len(texts), text)
    return rows


async def _generate_one(library: AudioLibrary, text: str) -> dict[str, Any]:
    row: dict[str, Any] = {"text": text, "status": "cached", "file": None, "reason": None, "detail": None}
    try:
        audio = await library.generate(text)
    except SynthesisError as exc:
        return {**row, "status": "failed", "reason": exc.reason, "detail": exc.detail}
    return {**row, "status": "cached" if audio.from_cache else "generated", "file": audio.file_name}


def list_cached(library: AudioLibrary) -> list[dict[str, Any]]:
    """Every cached file with its text; `current` says whether today's settings would use it."""
    rows = []
    for entry in library.entries():
        text = str(entry.get("text", ""))
        try:
            current = unavailable(library.settings) is None and library.key_for(text) == entry.get("key")
        except InvalidInputError:
            current = False
        rows.append({
            "text": text, "file": entry.get("file"), "bytes": entry.get("bytes"),
            "media_type": entry.get("media_type"), "voice_id": entry.get("voice_id"),
            "model": entry.get("model"), "output_format": entry.get("output_format"),
            "created_at": entry.get("created_at"), "current": current,
        })
    return sorted(rows, key=lambda row: (not row["current"], row["text"].casefold()))
