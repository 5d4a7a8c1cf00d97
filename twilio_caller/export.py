"""Tool definitions for each agent runtime, generated from skill.yaml (never written twice):

- `manifest`: the tools as skill.yaml declares them (name, description, entrypoint,
  side_effecting, parameters, returns);
- `openai`: function tools, `{"type": "function", "function": {name, description, parameters}}`;
- `anthropic`: `{name, description, input_schema}`;
- `mcp`: `{name, description, inputSchema, annotations}` as an MCP server lists them.

Every input schema is the tool's `parameters` exactly; each result is a fresh copy, so a
caller may change it without touching the loaded manifest."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from twilio_caller.errors import InvalidInputError
from twilio_caller.manifest import Manifest, ToolSpec, load_manifest

FORMATS = ("manifest", "openai", "anthropic", "mcp")


def export(format: str, manifest: Manifest | None = None) -> list[dict[str, Any]]:
    """Every tool of the manifest in `format` (one of FORMATS)."""
    shape = _SHAPES.get(format)
    if shape is None:
        raise InvalidInputError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}",
                                field="format")
    tools = (manifest or load_manifest()).tools.values()
    return [copy.deepcopy(shape(spec)) for spec in tools]


def manifest_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "entrypoint": spec.entrypoint,
        "side_effecting": spec.side_effecting,
        "parameters": spec.parameters,
        "returns": spec.returns,
    }


def openai_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
    }


def anthropic_tool(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}


def mcp_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "inputSchema": spec.parameters,
        "annotations": {
            "readOnlyHint": not spec.side_effecting,
            "destructiveHint": spec.side_effecting and spec.name.startswith("remove"),
            "openWorldHint": spec.name in _REACHES_OUT,
        },
    }


_REACHES_OUT = frozenset({"call", "say", "wait", "hangup", "run_command"})  # a phone line
_SHAPES: dict[str, Callable[[ToolSpec], dict[str, Any]]] = {
    "manifest": manifest_tool,
    "openai": openai_tool,
    "anthropic": anthropic_tool,
    "mcp": mcp_tool,
}
