"""Tool definitions for each agent runtime, generated from skill.yaml (never written twice):

- `manifest`: the tools as skill.yaml declares them (name, description, entrypoint,
  side_effecting, parameters, returns);
- `openai`: Chat Completions function tools, `{"type": "function", "function": {name,
  description, parameters}}`;
- `openai-responses`: Responses API function tools, `{"type": "function", name, description,
  parameters, strict}` (that API assumes strict unless told otherwise, so `strict` is explicit);
- `anthropic`: `{name, description, input_schema}`;
- `mcp`: `{name, description, inputSchema, outputSchema, annotations}` as an MCP server
  lists them; `outputSchema` is the tool's `returns` as one object schema (a top-level
  `oneOf` of objects merged: members of only some branches become optional), because MCP
  clients want `"type": "object"` at the top.

Every input schema is the tool's `parameters` exactly — or, with `strict`, its strict-mode
form (`strict.strict_schema`) and `strict: true` — and each result is a fresh copy, so a
caller may change it without touching the loaded manifest."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from twilio_caller.errors import InvalidInputError
from twilio_caller.manifest import Manifest, ToolSpec, load_manifest
from twilio_caller.strict import strict_schema

FORMATS = ("manifest", "openai", "openai-responses", "anthropic", "mcp")
STRICT_FORMATS = ("openai", "openai-responses", "anthropic")


def export(format: str, manifest: Manifest | None = None, *, strict: bool = False) -> list[dict[str, Any]]:
    """Every tool of the manifest in `format` (one of FORMATS); strict-mode schemas with `strict`."""
    shape = _SHAPES.get(format)
    if shape is None:
        raise InvalidInputError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}",
                                field="format")
    if strict and format not in STRICT_FORMATS:
        raise InvalidInputError(f"--strict applies to the formats {', '.join(STRICT_FORMATS)}, "
                                f"not {format!r}", field="strict")
    tools = (manifest or load_manifest()).tools.values()
    if strict:
        return [_strict_tool(format, shape(spec), spec) for spec in tools]
    return [copy.deepcopy(shape(spec)) for spec in tools]


def _strict_tool(format: str, tool: dict[str, Any], spec: ToolSpec) -> dict[str, Any]:
    schema = strict_schema(spec.parameters)
    match format:
        case "openai":
            return {**tool, "function": {**tool["function"], "parameters": schema, "strict": True}}
        case "openai-responses":
            return {**tool, "parameters": schema, "strict": True}
    return {**tool, "input_schema": schema, "strict": True}


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


def openai_responses_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "name": spec.name,
        "description": spec.description,
        "parameters": spec.parameters,
        "strict": False,
    }


def anthropic_tool(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}


def mcp_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "inputSchema": spec.parameters,
        "outputSchema": one_object(spec.returns),
        "annotations": {
            "readOnlyHint": not spec.side_effecting,
            "destructiveHint": spec.name in DESTRUCTIVE,
            "openWorldHint": spec.name in REACHES_OUT,
        },
    }


def one_object(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as a single object schema: the branches of a top-level oneOf/anyOf of objects
    merged, a member required only where every branch requires it, a member whose branches
    disagree accepting any of their shapes."""
    branches = schema.get("oneOf") or schema.get("anyOf")
    if not branches:
        return schema
    shapes: dict[str, list[Any]] = {}
    for branch in branches:
        for key, member in branch.get("properties", {}).items():
            if member not in shapes.setdefault(key, []):
                shapes[key].append(member)
    required = set.intersection(*(set(branch.get("required", [])) for branch in branches))
    merged: dict[str, Any] = {
        "type": "object",
        "properties": {key: found[0] if len(found) == 1 else {"anyOf": found} for key, found in shapes.items()},
        "required": [key for key in shapes if key in required],
    }
    if all(branch.get("additionalProperties") is False for branch in branches):
        merged["additionalProperties"] = False
    if "description" in schema:
        merged["description"] = schema["description"]
    return merged


REACHES_OUT = frozenset({"call", "say", "wait", "hangup", "press", "run_command"})  # a phone line
DESTRUCTIVE = frozenset({"remove_contact", "purge_calls", "update_contact"})  # deletes or overwrites
_SHAPES: dict[str, Callable[[ToolSpec], dict[str, Any]]] = {
    "manifest": manifest_tool,
    "openai": openai_tool,
    "openai-responses": openai_responses_tool,
    "anthropic": anthropic_tool,
    "mcp": mcp_tool,
}
