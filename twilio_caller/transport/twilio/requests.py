"""Twilio's webhook requests: the form body read within limits, the X-Twilio-Signature check,
and the parameters turned into the port's events."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from twilio.request_validator import RequestValidator

from twilio_caller.transport.port import (
    Answered, CallLine, Detected, Digits, Event, Heard, Ready, Silence, StatusChanged,
)
from twilio_caller.transport.twilio.status import ANSWERED_BY, answered_by, call_status, duration_seconds

MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 200
MAX_FIELD_CHARS = 8 * 1024
MAX_SPEECH_CHARS = 2000
MAX_DIGITS = 64
DTMF_KEYS = frozenset("0123456789*#ABCD")
CLOSE = {"Connection": "close"}  # an oversize body is not read to its end: the connection goes


async def read_form(request: Request) -> dict[str, str] | Response:
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


def signed(validator: RequestValidator, url: str, params: Mapping[str, str], signature: str) -> bool:
    """The signature over the exact URL Twilio used (one HMAC, the common case), else the
    validator's full check, which also tries the URL with and without its port."""
    expected = validator.compute_signature(url, dict(params))
    if secrets.compare_digest(expected.encode(), signature.encode()):
        return True
    return bool(validator.validate(url, dict(params), signature))


def parse_event(line: CallLine, kind: str, query: Mapping[str, str], params: Mapping[str, str]) -> Event | None:
    """The event a request to route `kind` carries; None for one that is malformed (a 400)."""
    if kind == "voice":
        return Answered(answered_by(params.get("AnsweredBy") or query.get("AnsweredBy")))
    if kind == "status":
        status = call_status(params.get("CallStatus", ""))
        if status is None:  # missing or unknown: refused, nothing changes
            return None
        sequence = params.get("SequenceNumber", "")
        return StatusChanged(status, int(sequence) if sequence.isdigit() else None,
                             answered_by(params.get("AnsweredBy")),
                             duration_seconds(params.get("CallDuration")), dict(params))
    if kind == "amd":  # the result of asynchronous detection; one Twilio never sends is refused
        raw = params.get("AnsweredBy", "")
        return Detected(answered_by(raw) or "", dict(params)) if raw in ANSWERED_BY else None
    number = query.get("n", "")
    if not number.isdigit() or kind not in ("gather", "hold"):
        return None
    speech = params.get("SpeechResult", "")[:MAX_SPEECH_CHARS]
    if kind == "hold":  # a hold's Gather posts what was said while held
        return Ready(int(number), speech, confidence(params) if speech else None)
    key = f"{line.call_id}:gather:{number}"
    digits = params.get("Digits", "")
    if not speech and digits and len(digits) <= MAX_DIGITS and set(digits) <= DTMF_KEYS:
        return Digits(int(number), digits, key)  # keys in answer (Twilio leaves the finishing # out)
    if not speech:
        return Silence(int(number))
    return Heard(int(number), speech, confidence(params), key)


def confidence(params: Mapping[str, str]) -> float | None:
    try:
        value = float(params["Confidence"])
    except (KeyError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None
