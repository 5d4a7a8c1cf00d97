"""Errors of the simulator itself, and the Twilio error codes it reports."""

from __future__ import annotations

from typing import Any

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"


class SimulatorError(Exception):
    """Base of every error the simulator raises to its user."""


class CalleeScriptError(SimulatorError):
    """A callee script (dict or YAML file) that cannot be used as given."""


class ServeError(SimulatorError):
    """The simulator could not start serving (for example, the port is taken)."""


class ApiError(SimulatorError):
    """A REST API answer in Twilio's error shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }


class CallFailure(SimulatorError):
    """Something Twilio reports against a call (11200, 12100, 12300, ...)."""

    def __init__(self, code: int, message: str, url: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.url = url


# Twilio error codes used by the simulator.
AUTHENTICATE = 20003
NOT_FOUND = 20404
TOO_MANY_REQUESTS = 20429
INTERNAL_SERVER_ERROR = 20500
CALLS_RESOURCE = 21200
TO_MISSING = 21201
INVALID_URL = 21205
FROM_NOT_ALLOWED = 21210
INVALID_TO = 21211
INVALID_FROM = 21212
FROM_MISSING = 21213
BLOCKED = 21216
NOT_IN_PROGRESS = 21220
INVALID_URL_FORMAT = 11100
HTTP_RETRIEVAL_FAILURE = 11200
DOCUMENT_PARSE_FAILURE = 12100
SCHEMA_WARNING = 12200
INVALID_CONTENT_TYPE = 12300
CALLBACK_WARNING = 15003
