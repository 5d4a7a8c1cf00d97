"""Tool definitions exported for each runtime: generated from skill.yaml, in each shape."""

from __future__ import annotations

import json
from typing import Any, get_args, get_origin, get_type_hints

import mcp.types
import pytest
import yaml
from anthropic.types import ToolParam
from jsonschema import Draft202012Validator
from openai.types.chat import ChatCompletionFunctionToolParam
from openai.types.responses import FunctionToolParam
from pydantic import TypeAdapter, ValidationError
from typing_extensions import is_typeddict

from twilio_caller.errors import InvalidInputError
from twilio_caller.export import FORMATS, export
from twilio_caller.manifest import MANIFEST_PATH, load_manifest

TOOLS = load_manifest().tools


@pytest.mark.parametrize("format", FORMATS)
def test_every_format_lists_every_tool_in_order_as_json(format: str) -> None:
    exported = export(format)
    json.loads(json.dumps(exported))
    names = [tool["function"]["name"] if format == "openai" else tool["name"] for tool in exported]
    assert names == list(TOOLS)


def test_manifest_is_the_tools_as_declared() -> None:
    declared = yaml.safe_load(MANIFEST_PATH.read_text(encoding="utf-8"))["tools"]
    exported = export("manifest")
    for tool, raw in zip(exported, declared, strict=True):
        assert set(tool) == {"name", "description", "entrypoint", "side_effecting", "parameters", "returns"}
        assert tool["description"] == " ".join(raw["description"].split())
        for key in ("name", "entrypoint", "parameters", "returns"):
            assert tool[key] == raw[key]


def test_openai_function_tools() -> None:
    for tool in export("openai"):
        assert set(tool) == {"type", "function"} and tool["type"] == "function"
        function = tool["function"]
        assert set(function) == {"name", "description", "parameters"}
        assert function["parameters"] == TOOLS[function["name"]].parameters
        assert function["parameters"]["type"] == "object"
        Draft202012Validator.check_schema(function["parameters"])
        assert len(function["name"]) <= 64 and function["name"].replace("_", "").isalnum()


def test_openai_responses_function_tools() -> None:
    for tool in export("openai-responses"):
        assert set(tool) == {"type", "name", "description", "parameters", "strict"}
        assert tool["type"] == "function" and tool["strict"] is False  # the API's default is strict
        assert tool["parameters"] == TOOLS[tool["name"]].parameters


def test_anthropic_tools() -> None:
    for tool in export("anthropic"):
        assert set(tool) == {"name", "description", "input_schema"}
        assert tool["input_schema"] == TOOLS[tool["name"]].parameters
        assert tool["input_schema"]["type"] == "object"
        Draft202012Validator.check_schema(tool["input_schema"])


def test_mcp_tools_are_valid_for_the_sdk() -> None:
    for tool in export("mcp"):
        assert set(tool) == {"name", "description", "inputSchema", "outputSchema", "annotations"}
        assert tool["inputSchema"] == TOOLS[tool["name"]].parameters
        parsed = mcp.types.Tool.model_validate(tool)
        assert parsed.input_schema == tool["inputSchema"]
        assert parsed.output_schema == tool["outputSchema"] and parsed.output_schema["type"] == "object"
        assert parsed.annotations is not None
        assert parsed.annotations.read_only_hint is (not TOOLS[tool["name"]].side_effecting)


def test_changing_an_export_leaves_the_manifest_alone() -> None:
    exported = export("anthropic")
    exported[0]["input_schema"]["properties"].clear()
    assert export("anthropic")[0]["input_schema"]["properties"]
    assert TOOLS[exported[0]["name"]].parameters["properties"]


def test_an_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="unknown format 'gemini'; formats: manifest, openai, "
                                                 "openai-responses, anthropic, mcp"):
        export("gemini")


def test_strict_is_refused_for_formats_without_a_strict_mode() -> None:
    for plain in ("manifest", "mcp"):
        with pytest.raises(InvalidInputError, match="--strict applies to the formats openai, "
                                                     "openai-responses, anthropic"):
            export(plain, strict=True)


# --- each export against the SDK's published types -------------------------------------

SDK_TYPES = {
    "openai": ChatCompletionFunctionToolParam,
    "openai-responses": FunctionToolParam,
    "anthropic": ToolParam,
}


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("format", sorted(SDK_TYPES))
def test_each_export_is_the_sdks_tool_type(format: str, strict: bool) -> None:
    for tool in export(format, strict=strict):
        assert sdk_type_problems(SDK_TYPES[format], tool) == []


@pytest.mark.parametrize("format", sorted(SDK_TYPES))
def test_the_sdk_type_check_rejects_the_other_shapes(format: str) -> None:
    for other in SDK_TYPES.keys() - {format}:
        assert sdk_type_problems(SDK_TYPES[format], export(other)[0]) != []


def sdk_type_problems(typed: Any, value: Any) -> list[str]:
    """What pydantic finds wrong in `value` as the TypedDict `typed`, and keys it doesn't declare
    (pydantic ignores unknown keys of a TypedDict; the APIs reject them)."""
    try:
        TypeAdapter(typed).validate_python(value)
    except ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return _unknown_keys(typed, value, "")


def _unknown_keys(typed: Any, value: Any, where: str) -> list[str]:
    if not is_typeddict(typed) or not isinstance(value, dict):
        return []
    hints = get_type_hints(typed)
    problems = [f"{where}{key}: not in {typed.__name__}" for key in value if key not in hints]
    for key, hint in hints.items():
        shapes = [hint, *get_args(hint)]
        if key in value and not any(get_origin(shape) is dict for shape in shapes):  # else open
            for inner in filter(is_typeddict, shapes):
                problems += _unknown_keys(inner, value[key], f"{where}{key}.")
    return problems


# --- strict mode, checked against OpenAI's Structured Outputs rules ------------------------

STRICT_KEYWORDS = {"type", "description", "enum", "properties", "required", "additionalProperties",
                   "items", "anyOf", "$defs", "$ref", "const"}
STRICT_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}


def strict_mode_problems(schema: dict[str, Any], where: str = "", depth: int = 1) -> list[str]:
    """Where `schema` breaks OpenAI's strict-mode rules: only the supported keywords and types;
    every object closed (`additionalProperties: false`) with every property required; at most
    10 levels of nesting; no oneOf/allOf/not; the root an object, not anyOf."""
    problems = [f"{where or 'root'}: {key!r} is not supported" for key in set(schema) - STRICT_KEYWORDS]
    if depth > 10:
        problems.append(f"{where}: nested deeper than 10 levels")
    kinds = schema.get("type", [])
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        if kind not in STRICT_TYPES:
            problems.append(f"{where}: type {kind!r} is not supported")
    if "properties" in schema or schema.get("type") == "object":
        if schema.get("additionalProperties") is not False:
            problems.append(f"{where or 'root'}: additionalProperties must be false")
        if set(schema.get("required", [])) != set(schema.get("properties", {})):
            problems.append(f"{where or 'root'}: every property must be required")
        for key, member in schema.get("properties", {}).items():
            problems += strict_mode_problems(member, f"{where}{key}.", depth + 1)
    if "items" in schema:
        problems += strict_mode_problems(schema["items"], f"{where}[].", depth + 1)
    for branch in schema.get("anyOf", []):
        problems += strict_mode_problems(branch, f"{where}|", depth + 1)
    return problems


def strict_schemas(format: str) -> list[dict[str, Any]]:
    exported = export(format, strict=True)
    if format == "openai":
        return [tool["function"]["parameters"] for tool in exported]
    return [tool["parameters" if format == "openai-responses" else "input_schema"] for tool in exported]


@pytest.mark.parametrize("format", ["openai", "openai-responses", "anthropic"])
def test_strict_exports_follow_the_strict_mode_rules(format: str) -> None:
    for tool in export(format, strict=True):
        assert (tool.get("function") or tool)["strict"] is True
    for schema in strict_schemas(format):
        assert schema["type"] == "object" and "anyOf" not in schema
        assert strict_mode_problems(schema) == []


def test_the_strict_mode_check_catches_the_plain_schemas() -> None:
    problems = [p for tool in TOOLS.values() for p in strict_mode_problems(tool.parameters)]
    assert any("'maxLength' is not supported" in p for p in problems)
    assert any("'default' is not supported" in p for p in problems)
    assert any("every property must be required" in p for p in problems)


def test_strict_schemas_keep_the_meaning() -> None:
    call = next(s for s in strict_schemas("openai") if "message" in s["properties"]
                and "dry_run" in s["properties"])
    assert call["properties"]["to"]["type"] == "string"  # required stays non-null
    assert call["properties"]["dry_run"]["type"] == ["boolean", "null"]  # optional: nullable
    assert "at most 1200 characters" in call["properties"]["message"]["description"]
    assert "default false" in call["properties"]["dry_run"]["description"]
    assert TOOLS["call"].parameters["properties"]["message"]["maxLength"] == 1200  # manifest untouched


def test_null_for_an_optional_argument_means_not_given(runtime: Any) -> None:
    """What a strict-mode model sends for arguments it leaves out."""
    from twilio_caller.manifest import invoke

    runtime.contacts.add("Contact1", "+13125550101", "America/Chicago")
    listed = invoke("list_calls", {"contact": None, "status": None, "since": None, "limit": None}, runtime)
    assert listed == {"calls": []}
    nulls = dict.fromkeys(TOOLS["call"].parameters["properties"])
    dry = invoke("call", {**nulls, "to": "Contact1", "message": "Running late", "dry_run": True}, runtime)
    assert dry["dry_run"] is True and dry["to"]["number"] == "+13125550101"
    with pytest.raises(InvalidInputError, match="field 'message'"):
        invoke("call", {**nulls, "to": "Contact1", "dry_run": True}, runtime)  # required stays required
    nested = TOOLS["call"].validate_arguments(
        {"to": "Contact1", "message": "Hi", "retry": {"on": None, "attempts": 2, "spacing_minutes": None}})
    assert nested["retry"] == {"attempts": 2}


def test_the_cli_exports_strict_schemas(capsys: pytest.CaptureFixture[str], home: Any) -> None:
    from twilio_caller.cli import main

    assert main(["tools", "--format", "openai-responses", "--strict"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == export("openai-responses", strict=True)
    assert main(["tools", "--strict", "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "invalid_input" and "--format" in error["message"]
