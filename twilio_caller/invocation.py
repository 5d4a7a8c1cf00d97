"""How one tool call runs, beside what it asks for: simulated or live, a simulated callee's
script, where a live call's progress goes. The CLI, the demo and MCP build one per command and
pass it with the tool call (`manifest.invoke`); nothing is set on a shared runtime for a tool
to read back. A tool that needs it takes it as its second positional parameter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SIMULATE_ENV = "TWILIO_CALLER_SIMULATE"  # 1: calls go to the built-in simulator

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Invocation:
    """How one tool call runs, beside what it asks for."""

    simulate: bool = False  # calls go to the built-in simulator
    callee: Mapping[str, Any] | None = None  # simulate mode: the callee script for this call
    progress: Progress | None = None  # a live call's progress events, as they happen

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Invocation:
        """The default for an invocation that says nothing: TWILIO_CALLER_SIMULATE decides."""
        return cls(simulate=environ.get(SIMULATE_ENV, "") in ("1", "true", "yes"))
