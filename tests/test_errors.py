"""One error boundary: each error class carries its exit code and HTTP status, `reported()` is
what the CLI, MCP and the control API report, and the control API runs the manifest's tools."""

from __future__ import annotations

import pytest

from twilio_caller import errors
from twilio_caller.errors import (
    ConfigError, ConflictError, ForbiddenError, InternalError, InvalidInputError, NotFoundError,
    RefusedError, ServerUnavailableError, TelephonyError, UnknownToolError, crash_message, reported,
)
from twilio_caller.manifest import load_manifest
from twilio_caller.server.control import error_response, served_tool

EXPECTED = [  # (class, code, exit code, HTTP status): the contract in ARCHITECTURE.md
    (InternalError, "internal", 1, 500), (InvalidInputError, "invalid_input", 2, 400),
    (UnknownToolError, "unknown_tool", 2, 400), (ConflictError, "conflict", 2, 400),
    (RefusedError, "refused", 3, 403), (TelephonyError, "telephony", 4, 502),
    (ConfigError, "config", 5, 500), (NotFoundError, "not_found", 6, 404),
    (ServerUnavailableError, "server_unavailable", 7, 503), (ForbiddenError, "forbidden", 1, 403),
]


@pytest.mark.parametrize(("kind", "code", "exit_code", "status"), EXPECTED)
def test_each_error_carries_its_code_exit_code_and_http_status(kind, code, exit_code, status) -> None:
    assert (kind.code, kind.exit_code, kind.http_status) == (code, exit_code, status)


def test_ours_are_reported_as_they_are_and_the_crash_note_is_not_asked() -> None:
    error = NotFoundError("no call with call_id 'x'")
    assert reported(error, lambda bug: pytest.fail("asked for a crash note")) is error


def test_anything_else_becomes_an_internal_error_with_the_crash_note() -> None:
    noted: list[BaseException] = []

    def note(bug: BaseException) -> str:
        noted.append(bug)
        return crash_message(bug, "details in errors.log")

    bug = KeyError("voice")
    error = reported(bug, note)
    assert isinstance(error, InternalError) and noted == [bug]
    assert error.to_dict() == {"error": {"code": "internal",
                                         "message": "internal error (KeyError); details in errors.log"}}


def test_the_control_api_answers_with_the_errors_own_status() -> None:
    refused = error_response(RefusedError("blocked", "the number is blocked"))
    assert refused.status_code == 403 and b'"rule":"blocked"' in refused.body
    assert error_response(ServerUnavailableError("down")).status_code == 503


def test_a_document_reads_back_as_the_error_it_describes() -> None:
    for kind, *_ in EXPECTED:
        if kind in (RefusedError, ForbiddenError):
            continue
        back = errors.from_dict(kind("m").to_dict())
        assert type(back) is kind and back.message == "m"
    assert type(errors.from_dict(ForbiddenError("wrong token").to_dict())) is InternalError  # as before


def test_the_control_api_runs_exactly_the_tools_skill_yaml_serves() -> None:
    served = {name for name, spec in load_manifest().tools.items() if spec.served_by}
    assert served == {"call", "say", "wait", "hangup", "press", "call_status", "reconcile_calls"}
    for name in served:
        spec, function = served_tool(name)
        assert spec.name == name and function.__name__ == name
    for name in ("add_contact", "no_such_tool"):
        with pytest.raises(InvalidInputError, match="is not a tool the server runs"):
            served_tool(name)


def test_each_served_tool_takes_the_arguments_skill_yaml_declares() -> None:
    import inspect

    for name, spec in load_manifest().tools.items():
        if spec.served_by is None or name == "call":  # call passes its arguments on whole to the dialer
            continue
        parameters = list(inspect.signature(served_tool(name)[1]).parameters.values())[1:]
        assert {p.name for p in parameters} == set(spec.parameters.get("properties", {})), name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), name
