"""How one tool call runs (simulated or live, a callee script, progress) travels with the call
(`manifest.invoke(…, invocation)`), never as fields set on a shared runtime."""

from __future__ import annotations

from typing import Any

import pytest

from twilio_caller import manifest
from twilio_caller.errors import ConfigError
from twilio_caller.invocation import SIMULATE_ENV, Invocation
from twilio_caller.runtime import Runtime


def takes_invocation(rt: Any, invocation: Invocation, /, *, name: str) -> dict[str, Any]:
    return {"name": name, "simulate": invocation.simulate}


def takes_something_else(rt: Any, extra: Any, /, *, name: str) -> dict[str, Any]:
    return {"name": name}


def spec_for(function_name: str) -> manifest.ToolSpec:
    declared = manifest.load_manifest().tool("remove_contact")
    return manifest.ToolSpec(name="probe", description="", entrypoint=f"{__name__}:{function_name}",
                             side_effecting=False, parameters=declared.parameters, returns=declared.returns)


def test_the_default_invocation_comes_from_the_runtimes_environment(home, clock) -> None:
    assert Invocation.from_environment({SIMULATE_ENV: "1"}).simulate
    assert not Invocation.from_environment({SIMULATE_ENV: "0"}).simulate
    live = Runtime(home, clock=clock, environ={})
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):  # live: the account is checked first
        manifest.invoke("call", {"to": "+13125550100", "message": "Hello"}, live)
    live.close()


def test_an_invocation_given_wins_over_the_environment(home, clock) -> None:
    rt = Runtime(home, clock=clock, environ={SIMULATE_ENV: "1"})
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        manifest.invoke("call", {"to": "+13125550100", "message": "Hello"}, rt, Invocation(simulate=False))
    rt.close()


def test_only_the_tools_that_need_it_take_the_invocation() -> None:
    tools = manifest.load_manifest().tools
    assert {name for name, spec in tools.items() if spec.takes_invocation} == {
        "call", "wait", "reconcile_calls", "run_command"}


def test_the_signature_check_allows_the_invocation_and_nothing_else_positional() -> None:
    assert manifest.signature_matches(spec_for("takes_invocation")) == []
    assert manifest.signature_matches(spec_for("takes_something_else")) == [
        "probe: parameter 'extra' must be keyword-only"]
