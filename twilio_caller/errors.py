"""One small exception hierarchy and the one boundary that reports it. Each error carries a
stable code, a message a person can act on, the CLI exit code and the control API's HTTP
status; `to_dict()` is the JSON shape agents and scripts rely on. `reported()` is what every
boundary (the CLI, the MCP server, the control API) turns an exception into."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TwilioCallerError(Exception):
    code = "internal"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class InternalError(TwilioCallerError):
    """A bug or an unexpected failure; the message says what to report."""


class InvalidInputError(TwilioCallerError):
    """Arguments, numbers, names or files that cannot be used as given."""

    code = "invalid_input"
    exit_code = 2
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.field is not None:
            body["error"]["field"] = self.field
        return body


class UnknownToolError(InvalidInputError):
    code = "unknown_tool"


class ConflictError(InvalidInputError):
    """The change would break a uniqueness rule (a name or number already taken)."""

    code = "conflict"


class RefusedError(TwilioCallerError):
    """The safety validator refused the call; `rule` is one of the stable rule ids."""

    code = "refused"
    exit_code = 3
    http_status = 403

    def __init__(self, rule: str, reason: str, next_allowed_at: str | None = None) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason
        self.next_allowed_at = next_allowed_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "rule": self.rule,
                "reason": self.reason,
                "next_allowed_at": self.next_allowed_at,
            }
        }


class TelephonyError(TwilioCallerError):
    code = "telephony"
    exit_code = 4
    http_status = 502

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable  # a fault that may pass (429, 5xx, a lost connection)


class ConfigError(TwilioCallerError):
    code = "config"
    exit_code = 5


class NotFoundError(TwilioCallerError):
    code = "not_found"
    exit_code = 6
    http_status = 404


class ServerUnavailableError(TwilioCallerError):
    code = "server_unavailable"
    exit_code = 7
    http_status = 503


class ForbiddenError(TwilioCallerError):
    """A control API request without the server's token."""

    code = "forbidden"
    http_status = 403


def reported(error: BaseException, on_crash: Callable[[BaseException], str]) -> TwilioCallerError:
    """What a boundary reports for `error`: one of ours as it is; anything else is a bug, an
    InternalError whose message `on_crash` gives after keeping the details where they belong
    (never a traceback to a person or an agent)."""
    if isinstance(error, TwilioCallerError):
        return error
    return InternalError(on_crash(error))


def crash_message(error: BaseException, where: str) -> str:
    """The message of an unexpected failure: its kind and where the details are."""
    return f"internal error ({type(error).__name__}); {where}"


def from_dict(document: dict[str, Any]) -> TwilioCallerError:
    """The error an error document describes (the control API's answers, read by clients)."""
    body = document.get("error", {})
    code = body.get("code")
    if code == "refused":
        return RefusedError(body.get("rule", "unknown"), body.get("reason", ""), body.get("next_allowed_at"))
    kind = _KINDS.get(code or "", InternalError)
    if kind is ForbiddenError:
        kind = InternalError  # a client with the wrong token: reported as before
    error = kind(body.get("message", "the server gave no reason"))
    if isinstance(error, InvalidInputError):
        error.field = body.get("field")
    return error


def _kinds(base: type[TwilioCallerError]) -> dict[str, type[TwilioCallerError]]:
    found = {}
    for kind in base.__subclasses__():
        found.update(_kinds(kind))
        found.setdefault(kind.code, kind)
    return found


_KINDS = _kinds(TwilioCallerError)
