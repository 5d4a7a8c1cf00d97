"""Sentences a person or an agent types ("call Contact1 and tell her I'll be late") → the
tool calls they mean: the grammar (grammar.py), what it knows of the world (context.py), and
how relayed words are rephrased for the callee (rephrase.py). `run_command` is the tool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twilio_caller.sentences.context import Context
from twilio_caller.sentences.grammar import parse

if TYPE_CHECKING:
    from twilio_caller.invocation import Invocation
    from twilio_caller.runtime import Runtime


def run_command(rt: Runtime, invocation: Invocation, /, *, text: str, dry_run: bool = False) -> dict[str, Any]:
    """Parse a sentence, then run the tool it names through the manifest, like any tool call.
    A clarification runs nothing. With dry_run a call only checks the contact and the safety
    rules; other tools that change something do not run (result null); read-only ones do."""
    from twilio_caller.manifest import invoke, load_manifest

    parsed = parse(text, Context.from_runtime(rt))
    if "clarify" in parsed:
        return {"parsed": parsed, "result": None}
    tool, arguments = parsed["tool"], parsed["arguments"]
    if dry_run and tool == "call":
        arguments = {**arguments, "dry_run": True}
    elif dry_run and load_manifest().tool(tool).side_effecting:
        return {"parsed": parsed, "result": None}
    return {"parsed": parsed, "result": invoke(tool, arguments, rt, invocation)}
