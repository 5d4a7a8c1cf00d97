"""Tool definitions exported for each runtime: generated from skill.yaml, in each shape."""

from __future__ import annotations

import json

import mcp.types
import pytest
import yaml
from jsonschema import Draft202012Validator

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
    with pytest.raises(InvalidInputError, match="unknown format 'gemini'; formats: manifest, openai, anthropic, mcp"):
        export("gemini")
