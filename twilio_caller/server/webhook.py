"""The Twilio-facing app: /twilio/{call_id}/{token}/voice|gather|hold|status.

The call_id is public; the per-call token is the secret part (wrong → 404, nothing
recorded). Every request must carry a valid X-Twilio-Signature, computed over the public
URL Twilio used — not the loopback URL this app sees (forged or missing → 403)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from twilio_caller.audio import AudioLibrary, audio_routes
from twilio_caller.call_status import PROVIDER
from twilio_caller.dialer import Dialer
from twilio_caller.errors import TwilioCallerError
from twilio_caller.sessions import CallSession

log = logging.getLogger("twilio_caller.webhook")
MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 200
MAX_FIELD_CHARS = 8 * 1024
MAX_SPEECH_CHARS = 2000
TWIML = "application/xml"
CALL_STATUSES = PROVIDER
CLOSE = {"Connection": "close"}  # an oversize body is not read to its end: the connection goes


def build_webhook_app(dialer: Dialer, auth_token: str, public_base_url: str,
                      audio: AudioLibrary | None = None) -> Starlette:
    validator = RequestValidator(auth_token)
    base = public_base_url.rstrip("/")

    async def authorised(request: Request) -> tuple[CallSession, dict[str, str]] | Response:
        session = dialer.registry.get(request.path_params["call_id"])
        given = request.path_params["token"].encode("utf-8", "surrogateescape")  # any text: never a 500
        if session is None or not secrets.compare_digest(session.token.encode(), given):
            return Response(status_code=404)
        params = await _form(request)
        if isinstance(params, Response):
            return params
        url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not _signed(validator, url, params if request.method == "POST" else {}, signature):
            log.warning("rejected a request with a bad signature for call %s", session.call_id)
            return Response(status_code=403)
        sid = params.get("CallSid") or request.query_params.get("CallSid")
        if session.twilio_sid and sid and sid != session.twilio_sid:
            return Response(status_code=404)
        if sid and not session.twilio_sid:
            session.twilio_sid = sid
        return session, params

    async def voice(request: Request) -> Response:
        checked = await authorised(request)
        if isinstance(checked, Response):
            return checked
        session, params = checked
        answered = params.get("AnsweredBy") or request.query_params.get("AnsweredBy")
        return Response(await dialer.conversation.voice(session, answered), media_type=TWIML)

    async def gather(request: Request) -> Response:
        checked = await authorised(request)
        if isinstance(checked, Response):
            return checked
        session, params = checked
        number = request.query_params.get("n", "")
        if not number.isdigit():
            return Response(status_code=400)
        speech = params.get("SpeechResult", "")[:MAX_SPEECH_CHARS]
        answer = await dialer.conversation.gather(
            session, int(number), speech, _confidence(params),
            dedupe_key=f"{session.call_id}:gather:{number}",
        )
        return Response(answer, media_type=TWIML)

    async def hold(request: Request) -> Response:
        checked = await authorised(request)
        if isinstance(checked, Response):
            return checked
        number = request.query_params.get("n", "")
        if not number.isdigit():
            return Response(status_code=400)
        return Response(await dialer.conversation.hold(checked[0], int(number)), media_type=TWIML)

    async def status(request: Request) -> Response:
        checked = await authorised(request)
        if isinstance(checked, Response):
            return checked
        session, params = checked
        call_status = params.get("CallStatus", "")
        sequence = params.get("SequenceNumber", "")
        if call_status not in CALL_STATUSES:  # missing or unknown: refused, nothing changes
            return Response(status_code=400)
        answer = 204
        try:
            await dialer.conversation.status(
                session, call_status, int(sequence) if sequence.isdigit() else None, params
            )
        except TwilioCallerError:  # not recorded (the store refused): the waiting tools were told
            answer = 500
        return Response(status_code=answer)

    async def ping(request: Request) -> Response:
        return Response("twilio-caller", media_type="text/plain")

    prefix = "/twilio/{call_id}/{token}"
    return Starlette(routes=[
        Route("/twilio/ping", ping, methods=["GET"]),
        Route(f"{prefix}/voice", voice, methods=["GET", "POST"]),
        Route(f"{prefix}/gather", gather, methods=["POST"]),
        Route(f"{prefix}/hold", hold, methods=["POST"]),
        Route(f"{prefix}/status", status, methods=["POST"]),
        *(audio_routes(audio) if audio is not None else []),
    ])


async def _form(request: Request) -> dict[str, str] | Response:
    """Twilio's form parameters, or the 4xx that a body we will not parse deserves."""
    if request.method != "POST":
        return {}
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return Response(status_code=413, headers=CLOSE)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return Response(status_code=413, headers=CLOSE)
    except ClientDisconnect:  # the caller gave up (Twilio's 15 s, or a tunnel dropping)
        return Response(status_code=400)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and media_type != "application/x-www-form-urlencoded":
        return Response(status_code=415)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body),
                          encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return Response(status_code=400)
    if any(len(value) > MAX_FIELD_CHARS for _, value in pairs):
        return Response(status_code=413, headers=CLOSE)
    return dict(pairs)


def _signed(validator: RequestValidator, url: str, params: Mapping[str, str], signature: str) -> bool:
    """The signature over the exact URL Twilio used (one HMAC, the common case), else the
    validator's full check, which also tries the URL with and without its port."""
    expected = validator.compute_signature(url, dict(params))
    if secrets.compare_digest(expected.encode(), signature.encode()):
        return True
    return bool(validator.validate(url, dict(params), signature))


def _confidence(params: Mapping[str, str]) -> float | None:
    try:
        value = float(params["Confidence"])
    except (KeyError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None
