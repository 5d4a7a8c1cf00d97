"""Create and update parameters of the Calls API, validated as Twilio validates them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import phonenumbers

from twilio_caller.simulator.errors import (
    BLOCKED,
    CALLS_RESOURCE,
    FROM_MISSING,
    FROM_NOT_ALLOWED,
    INVALID_FROM,
    INVALID_TO,
    INVALID_URL,
    TO_MISSING,
    ApiError,
)
from twilio_caller.simulator.records import CallOptions

STATUS_CALLBACK_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
MACHINE_DETECTION = frozenset({"Enable", "DetectMessageEnd"})
DTMF = frozenset("0123456789*#ABCDw")
MAX_TWIML = 4000
MAX_SEND_DIGITS = 32


class Form(Protocol):
    def get(self, key: str, /) -> object: ...

    def getlist(self, key: str, /) -> Sequence[object]: ...


@dataclass(frozen=True)
class NumberPolicy:
    """Which caller ids the account owns (None: any valid number) and which numbers are blocked."""

    caller_ids: frozenset[str] | None = None
    blocked: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Dialing:
    to: str
    from_: str
    options: CallOptions


@dataclass(frozen=True)
class Update:
    url: str | None = None
    twiml: str | None = None
    method: str | None = None
    status: str | None = None
    status_callback: str | None = None
    status_callback_method: str | None = None
    fallback_url: str | None = None
    fallback_method: str | None = None
    time_limit: int | None = None


def _invalid(message: str, code: int = CALLS_RESOURCE) -> ApiError:
    return ApiError(400, code, message)


def parse_create(form: Form, policy: NumberPolicy) -> Dialing:
    to = _text(form, "To")
    from_ = _text(form, "From")
    if not to:
        raise _invalid("A 'To' phone number is required.", TO_MISSING)
    if not from_:
        raise _invalid("A 'From' phone number is required.", FROM_MISSING)
    to_number = _e164(to)
    if to_number is None:
        raise _invalid(f"Invalid 'To' Phone Number: {to}", INVALID_TO)
    from_number = _e164(from_)
    if from_number is None:
        raise _invalid(f"Invalid 'From' Phone Number: {from_}", INVALID_FROM)
    _check_policy(to_number, from_number, policy)
    return Dialing(to_number, from_number, _create_options(form))


def _check_policy(to: str, from_: str, policy: NumberPolicy) -> None:
    if policy.caller_ids is not None and from_ not in policy.caller_ids:
        raise _invalid(
            f"The source phone number provided, {from_}, is not yet verified for your account. "
            "You may only make calls from phone numbers that you've verified or purchased from Twilio.",
            FROM_NOT_ALLOWED,
        )
    if to in policy.blocked:
        raise _invalid(f"Call blocked by Twilio blocklist: {to}", BLOCKED)


def _create_options(form: Form) -> CallOptions:
    url, twiml = _url(form, "Url"), _text(form, "Twiml")
    if url is None and not twiml:
        raise _invalid("Url parameter is required. Provide Url, Twiml or ApplicationSid.", INVALID_URL)
    if url is None and twiml is not None and len(twiml) > MAX_TWIML:
        raise _invalid(f"Twiml is {len(twiml)} characters; the maximum is {MAX_TWIML}.")
    return CallOptions(
        url=url,
        twiml=None if url is not None else twiml,
        method=_method(form, "Method") or "POST",
        fallback_url=_url(form, "FallbackUrl"),
        fallback_method=_method(form, "FallbackMethod") or "POST",
        status_callback=_url(form, "StatusCallback"),
        status_callback_method=_method(form, "StatusCallbackMethod") or "POST",
        status_callback_events=_events(form),
        timeout=_integer(form, "Timeout", 60, 1, 600),
        time_limit=_integer(form, "TimeLimit", 14400, 1, 86400),
        machine_detection=_machine_detection(form),
        machine_detection_timeout=_integer(form, "MachineDetectionTimeout", 30, 3, 59),
        async_amd=_boolean(form, "AsyncAmd"),
        async_amd_status_callback=_url(form, "AsyncAmdStatusCallback"),
        async_amd_status_callback_method=_method(form, "AsyncAmdStatusCallbackMethod") or "POST",
        send_digits=_send_digits(form),
        record=_boolean(form, "Record"),
    )


def parse_update(form: Form) -> Update:
    url, twiml = _url(form, "Url"), _text(form, "Twiml")
    if url is not None and twiml is not None:
        raise _invalid("Url and Twiml cannot be used together.")
    if twiml is not None and len(twiml) > MAX_TWIML:
        raise _invalid(f"Twiml is {len(twiml)} characters; the maximum is {MAX_TWIML}.")
    status = _text(form, "Status")
    if status is not None and status not in ("canceled", "completed"):
        raise _invalid(f"Status must be canceled or completed, not {status!r}.")
    time_limit = _integer(form, "TimeLimit", 0, 1, 86400) if _text(form, "TimeLimit") is not None else None
    return Update(
        url=url,
        twiml=twiml,
        method=_method(form, "Method"),
        status=status,
        status_callback=_url(form, "StatusCallback"),
        status_callback_method=_method(form, "StatusCallbackMethod"),
        fallback_url=_url(form, "FallbackUrl"),
        fallback_method=_method(form, "FallbackMethod"),
        time_limit=time_limit,
    )


def _text(form: Form, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _e164(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _url(form: Form, name: str) -> str | None:
    raw = _text(form, name)
    if raw is None or not raw.strip():
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(f"{name} is not a valid URL: {raw}", INVALID_URL)
    return raw.strip()


def _method(form: Form, name: str) -> str | None:
    raw = _text(form, name)
    if raw is None:
        return None
    if raw.upper() not in ("GET", "POST"):
        raise _invalid(f"{name} must be GET or POST, not {raw!r}.")
    return raw.upper()


def _integer(form: Form, name: str, default: int, low: int, high: int) -> int:
    raw = _text(form, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(f"{name} must be an integer, not {raw!r}.") from None
    if not low <= value <= high:
        raise _invalid(f"{name} must be between {low} and {high}, not {value}.")
    return value


def _boolean(form: Form, name: str) -> bool:
    raw = _text(form, name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise _invalid(f"{name} must be true or false, not {raw!r}.")
    return raw.lower() == "true"


def _events(form: Form) -> frozenset[str]:
    values: Collection[object] = form.getlist("StatusCallbackEvent")
    events = frozenset(word for value in values if isinstance(value, str) for word in value.split())
    unknown = events - STATUS_CALLBACK_EVENTS
    if unknown:
        raise _invalid(f"StatusCallbackEvent has unknown value(s): {', '.join(sorted(unknown))}.")
    return events or frozenset({"completed"})


def _machine_detection(form: Form) -> str | None:
    raw = _text(form, "MachineDetection")
    if raw is None or raw == "":
        return None
    if raw not in MACHINE_DETECTION:
        raise _invalid(f"MachineDetection must be Enable or DetectMessageEnd, not {raw!r}.")
    return raw


def _send_digits(form: Form) -> str | None:
    raw = _text(form, "SendDigits")
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_SEND_DIGITS or not set(raw) <= DTMF:
        raise _invalid(f"SendDigits must be up to {MAX_SEND_DIGITS} of 0-9, A-D, *, # and w.")
    return raw
