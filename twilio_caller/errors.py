"""One small exception hierarchy. Each error carries a stable code, a message a person can
act on, and the CLI exit code; `to_dict()` is the JSON shape agents and scripts rely on."""

from __future__ import annotations

from typing import Any


class TwilioCallerError(Exception):
    code = "internal"
    exit_code = 1

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

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable  # a fault that may pass (429, 5xx, a lost connection)


class ConfigError(TwilioCallerError):
    code = "config"
    exit_code = 5


class NotFoundError(TwilioCallerError):
    code = "not_found"
    exit_code = 6


class ServerUnavailableError(TwilioCallerError):
    code = "server_unavailable"
    exit_code = 7


def from_dict(document: dict[str, Any]) -> TwilioCallerError:
    """The error an error document describes (the control API's answers, read by clients)."""
    body = document.get("error", {})
    code = body.get("code")
    if code == "refused":
        return RefusedError(body.get("rule", "unknown"), body.get("reason", ""), body.get("next_allowed_at"))
    kinds: dict[str, type[TwilioCallerError]] = {
        cls.code: cls
        for cls in (InvalidInputError, UnknownToolError, ConflictError, TelephonyError,
                    ConfigError, NotFoundError, ServerUnavailableError, InternalError)
    }
    kind = kinds.get(code or "", InternalError)
    error = kind(body.get("message", "the server gave no reason"))
    if isinstance(error, InvalidInputError):
        error.field = body.get("field")
    return error
