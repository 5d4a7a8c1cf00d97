"""Strict-mode tool schemas (OpenAI Structured Outputs, Anthropic strict tools), derived from
a tool's JSON-Schema parameters:

- every object lists all its properties in `required` and has `additionalProperties: false`;
- a property that was optional becomes nullable (`null` added to its type, or to its enum),
  and null then means "not given" (the manifest drops it before validation);
- keywords strict mode does not take (lengths, bounds, patterns, formats, defaults) are
  removed and said in words at the end of the property's description, so the model still
  knows them; the tool validates them on arrival as always."""

from __future__ import annotations

from typing import Any

KEPT = frozenset({"type", "description", "enum", "properties", "required", "additionalProperties",
                  "items", "anyOf"})
_IN_WORDS = {
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "minimum": "at least {}",
    "maximum": "at most {}",
    "exclusiveMinimum": "more than {}",
    "exclusiveMaximum": "less than {}",
    "minItems": "at least {} items",
    "maxItems": "at most {} items",
    "pattern": "matching the pattern {}",
    "format": "format {}",
    "default": "default {}",
}


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (a JSON-Schema object) in its strict-mode form; `schema` is left unchanged."""
    return _convert(schema, nullable=False)


def _convert(schema: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
    converted = {key: value for key, value in schema.items() if key in KEPT}
    if "const" in schema:
        converted["enum"] = [schema["const"]]
    if schema.get("oneOf"):
        converted["anyOf"] = schema["oneOf"]
    if "anyOf" in converted:
        converted["anyOf"] = [_convert(branch, nullable=False) for branch in converted["anyOf"]]
    if "items" in converted:
        converted["items"] = _convert(converted["items"], nullable=False)
    if "properties" in converted:
        _strict_object(converted)
    notes = [_in_words(key, schema[key]) for key in _IN_WORDS if key in schema]
    if notes:
        described = schema.get("description", "").rstrip()
        joined = "; ".join(notes)
        converted["description"] = f"{described} ({joined})" if described else joined.capitalize()
    return _nullable(converted) if nullable else converted


def _strict_object(converted: dict[str, Any]) -> None:
    required = set(converted.get("required", []))
    converted["properties"] = {
        key: _convert(member, nullable=key not in required)
        for key, member in converted["properties"].items()
    }
    converted["required"] = list(converted["properties"])
    converted["additionalProperties"] = False


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in schema:
        if {"type": "null"} not in schema["anyOf"]:
            schema["anyOf"] = [*schema["anyOf"], {"type": "null"}]
        return schema
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    kind = schema.get("type")
    if isinstance(kind, str) and kind != "null":
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        schema["type"] = [*kind, "null"]
    return schema


def _in_words(keyword: str, value: Any) -> str:
    if keyword == "minLength" and value == 1:
        return "not empty"
    return _IN_WORDS[keyword].format(_shown(value))


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)
