"""Requests toward the application, made the way Twilio makes them: form parameters,
`X-Twilio-Signature` over the exact URL, a hard 15 s limit (URL fragments `#ct=…&rt=…&tt=…`
may shorten it and are stripped before sending and signing)."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator

from twilio_caller.simulator.chaos import Chaos
from twilio_caller.simulator.errors import (
    DOCUMENT_PARSE_FAILURE,
    HTTP_RETRIEVAL_FAILURE,
    INVALID_CONTENT_TYPE,
    CallFailure,
)
from twilio_caller.simulator.twiml import Document, Play, parse

HTTP_LIMIT_SECONDS = 15.0
CONNECT_SECONDS = 5.0
TWIML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
USER_AGENT = "TwilioProxy/1.1"
MP3_BYTES_PER_SECOND = 16000  # 128 kbit/s


@dataclass(frozen=True)
class Target:
    """A webhook URL without its fragment, and the time limits the fragment sets."""

    url: str
    connect: float = CONNECT_SECONDS
    read: float = HTTP_LIMIT_SECONDS
    total: float = HTTP_LIMIT_SECONDS

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        bare = urlunsplit(parts._replace(fragment=""))
        settings = dict(parse_qsl(parts.fragment))
        return cls(
            url=bare,
            connect=_milliseconds(settings.get("ct"), CONNECT_SECONDS),
            read=_milliseconds(settings.get("rt"), HTTP_LIMIT_SECONDS),
            total=_milliseconds(settings.get("tt"), HTTP_LIMIT_SECONDS),
        )


def _milliseconds(raw: str | None, default: float) -> float:
    if raw is None or not raw.isdigit() or int(raw) == 0:
        return default
    return min(int(raw) / 1000, HTTP_LIMIT_SECONDS)


@dataclass(frozen=True)
class Sent:
    """The URL and method as they went out, and the answer."""

    method: str
    url: str
    response: httpx.Response


class WebhookClient:
    def __init__(self, auth_token: str, chaos: Chaos) -> None:
        self._auth_token = auth_token
        self._validator = RequestValidator(auth_token)
        self._chaos = chaos
        self._http: httpx.AsyncClient | None = None
        self.tunnels: dict[str, str] = {}  # public base URL → the local address it forwards to

    def for_call(self) -> WebhookClient:
        """A client with a connection pool of its own, for one call: as at Twilio, the
        requests of many live calls never queue in (or scan) one shared pool."""
        client = WebhookClient(self._auth_token, self._chaos)
        client.tunnels = self.tunnels  # shared: a tunnel added later applies to every call
        return client

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def send(self, method: str, url: str, params: Mapping[str, str], *, stallable: bool = False) -> Sent:
        """Send a signed request; any transport failure or timeout is a 11200."""
        target = Target.parse(url)
        stall = stallable and self._chaos.take_stall()
        hook = self._chaos.take_webhook_hook(url, params)
        if hook is not None and not hook[1]:
            await asyncio.to_thread(hook[0])
            await self.aclose()  # the application may have been restarted: no kept-alive connection to the old one
        method = method.upper()
        destinations = self._chaos.balance(_with_query(target.url, params) if method == "GET" else target.url)
        try:
            async with asyncio.timeout(target.total):
                for attempt, destination in enumerate(destinations or [None]):
                    request = self._build(method, target, dict(params), destination)
                    try:
                        if hook is not None and hook[1]:
                            response = await self._in_flight(request, hook[0])
                        else:
                            response = await self._client().send(request)
                        break
                    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                        if attempt + 1 >= len(destinations):  # a balancer passes the request on
                            raise
                await response.aread()
                if stall:
                    await asyncio.sleep(target.total + 1)
        except TimeoutError:
            raise CallFailure(HTTP_RETRIEVAL_FAILURE, f"HTTP retrieval failure: no answer within {target.total:g} s", url) from None
        except httpx.TimeoutException:
            raise CallFailure(HTTP_RETRIEVAL_FAILURE, "HTTP retrieval failure: timed out", url) from None
        except httpx.HTTPError as error:
            raise CallFailure(HTTP_RETRIEVAL_FAILURE, f"HTTP retrieval failure: {error!r}", url) from None
        return Sent(request.method, str(request.url), response)

    async def _in_flight(self, request: httpx.Request, hook: Callable[[], None]) -> httpx.Response:
        """Send the request and, while it is on its way, run the hook; read the answer after."""
        sending = asyncio.create_task(self._client().send(request))
        try:
            await asyncio.to_thread(hook)
        finally:
            response = await sending  # its failure (the application gone) is the request's
        return response

    async def fetch_twiml(self, method: str, url: str, params: Mapping[str, str]) -> tuple[Sent, Document]:
        sent = await self.send(method, url, params, stallable=True)
        response = sent.response
        if not 200 <= response.status_code < 300:
            raise CallFailure(HTTP_RETRIEVAL_FAILURE, f"HTTP retrieval failure: status {response.status_code}", url)
        media_type = _media_type(response)
        if media_type.startswith("audio/"):
            return sent, Document((Play(Target.parse(url).url),))
        if media_type not in TWIML_TYPES:
            raise CallFailure(INVALID_CONTENT_TYPE, f"Invalid Content-Type {media_type or '(none)'!r}", url)
        if not response.content.strip():
            raise CallFailure(DOCUMENT_PARSE_FAILURE, "Document parse failure: empty document", url)
        try:
            return sent, parse(response.content)
        except CallFailure as failure:
            raise CallFailure(failure.code, failure.message, url) from None

    async def fetch_audio(self, url: str, params: Mapping[str, str]) -> tuple[Sent, float]:
        """Fetch a <Play> URL; 200 and an audio Content-Type are required. Returns its length."""
        sent = await self.send("GET", url, params)
        response = sent.response
        if response.status_code != 200:
            raise CallFailure(HTTP_RETRIEVAL_FAILURE, f"HTTP retrieval failure: status {response.status_code}", url)
        media_type = _media_type(response)
        if not media_type.startswith("audio/"):
            raise CallFailure(INVALID_CONTENT_TYPE, f"Invalid Content-Type {media_type or '(none)'!r} for <Play>", url)
        return sent, audio_seconds(response.content)

    def _build(self, method: str, target: Target, params: dict[str, str],
               destination: str | None = None) -> httpx.Request:
        """The request, signed over the public URL, sent to `destination` (a balanced
        instance) or where the URL's tunnel goes."""
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
        timeout = httpx.Timeout(target.read, connect=target.connect)
        if method == "GET":
            full = _with_query(target.url, params)
            headers["X-Twilio-Signature"] = self._signer().compute_signature(full, {})
            return self._client().build_request("GET", destination or self._through_tunnel(full), headers=headers,
                                                timeout=timeout)
        headers["X-Twilio-Signature"] = self._signer().compute_signature(target.url, params)
        return self._client().build_request(
            "POST", destination or self._through_tunnel(target.url), data=params, headers=headers, timeout=timeout
        )

    def _signer(self) -> RequestValidator:
        token = self._chaos.signing_token
        return self._validator if token is None else RequestValidator(token)

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """The X-Twilio-Signature Twilio would send for `url` and `params`."""
        return str(self._signer().compute_signature(url, dict(params)))

    def socket_destinations(self, url: str) -> list[str]:
        """Where a ws(s) URL's connection goes: the balanced instances in turn (as for webhook
        requests: one that refuses is passed over), else the local end of its tunnel."""
        web = ("https://" if url.startswith("wss://") else "http://") + url.split("://", 1)[1]
        balanced = self._chaos.balance(web)
        if not balanced:
            return [self.through_tunnel(url)]
        return [("wss://" if destination.startswith("https://") else "ws://") + destination.split("://", 1)[1]
                for destination in balanced]

    def through_tunnel(self, url: str) -> str:
        """Where a public URL (http(s) or ws(s)) really goes: the local end of its tunnel."""
        secure = url.startswith("wss://")
        if url.startswith(("ws://", "wss://")):
            web = self._through_tunnel(("https://" if secure else "http://") + url.split("://", 1)[1])
            return ("wss://" if web.startswith("https://") else "ws://") + web.split("://", 1)[1]
        return self._through_tunnel(url)

    def _through_tunnel(self, url: str) -> str:
        """Where a public URL really goes: signed as public, delivered to the local end."""
        for public, local in self.tunnels.items():
            if url == public or url.startswith(public.rstrip("/") + "/"):
                return local.rstrip("/") + url[len(public.rstrip("/")):]
        return url

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                follow_redirects=True,
                trust_env=False,
                timeout=httpx.Timeout(HTTP_LIMIT_SECONDS, connect=CONNECT_SECONDS),
                # Twilio has no connection cap: held requests must not starve the others
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            )
        return self._http


def _with_query(url: str, params: Mapping[str, str]) -> str:
    if not params:
        return url
    separator = "&" if urlsplit(url).query else ("" if url.endswith("?") else "?")
    return f"{url}{separator}{urlencode(params)}"


def _media_type(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", "")).split(";")[0].strip().lower()


def audio_seconds(content: bytes) -> float:
    """Length of a WAV from its header; other formats are taken as 128 kbit/s MP3."""
    if content[:4] == b"RIFF":
        try:
            with wave.open(io.BytesIO(content)) as audio:
                return float(audio.getnframes()) / float(audio.getframerate())
        except (wave.Error, EOFError, ZeroDivisionError):
            pass
    return len(content) / MP3_BYTES_PER_SECOND
