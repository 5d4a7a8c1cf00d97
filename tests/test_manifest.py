from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from twilio_caller import manifest
from twilio_caller.errors import InternalError, InvalidInputError, UnknownToolError
from twilio_caller.runtime import Runtime

TOOLS = sorted(manifest.load_manifest().tools)


def test_manifest_at_top_level_is_the_one_the_package_loads() -> None:
    top = Path(__file__).resolve().parents[1] / "skill.yaml"
    assert manifest.MANIFEST_PATH.resolve() == top.resolve()
    raw = yaml.safe_load(top.read_text())
    assert raw["name"] == "twilio-caller"
    assert [tool["name"] for tool in raw["tools"]] == list(manifest.load_manifest().tools)


@pytest.mark.parametrize("name", TOOLS)
def test_every_tool_declares_valid_schemas(name: str) -> None:
    spec = manifest.load_manifest().tool(name)
    assert re.fullmatch(r"[a-z][a-z_]{1,40}", spec.name)
    assert len(spec.description) > 20
    Draft202012Validator.check_schema(spec.parameters)
    Draft202012Validator.check_schema(spec.returns)
    assert spec.parameters["type"] == "object"
    assert spec.parameters["additionalProperties"] is False
    assert isinstance(spec.side_effecting, bool)


@pytest.mark.parametrize("name", TOOLS)
def test_every_tool_has_an_implementation_whose_parameters_match(name: str) -> None:
    spec = manifest.load_manifest().tool(name)
    assert callable(spec.function)
    assert manifest.signature_matches(spec) == []


def test_config_schema_is_valid_and_strict() -> None:
    schema = manifest.load_manifest().config_schema
    Draft202012Validator.check_schema(schema)

    def objects(node: dict) -> list[dict]:
        found = [node] if node.get("type") == "object" else []
        for sub in node.get("properties", {}).values():
            found += objects(sub)
        return found

    assert all(node["additionalProperties"] is False for node in objects(schema))


def test_the_signature_check_notices_a_mismatch() -> None:
    spec = manifest.load_manifest().tool("add_contact")
    broken = manifest.ToolSpec(
        name=spec.name, description=spec.description, entrypoint=spec.entrypoint,
        side_effecting=True, parameters={**spec.parameters, "required": ["name"]},
        returns=spec.returns,
    )
    assert manifest.signature_matches(broken) == ["add_contact: 'number' required-ness differs"]


def test_arguments_are_checked_before_any_work(runtime: Runtime) -> None:
    with pytest.raises(InvalidInputError) as caught:
        manifest.invoke("add_contact", {"name": "Contact7"}, runtime)
    assert "missing required field 'number'" in caught.value.message
    with pytest.raises(InvalidInputError) as caught:
        manifest.invoke("add_contact", {"name": 7, "number": "312-555-0123"}, runtime)
    assert caught.value.field == "name"
    assert "7 is a number, expected a string" in caught.value.message
    with pytest.raises(InvalidInputError) as caught:
        manifest.invoke("list_calls", {"limit": 0}, runtime)
    assert caught.value.field == "limit"
    with pytest.raises(InvalidInputError, match="arguments must be a JSON object, not an array"):
        manifest.invoke("list_contacts", [], runtime)
    assert not (runtime.home / "twilio-caller.db").exists()


def test_unknown_tool_names_the_closest() -> None:
    with pytest.raises(UnknownToolError, match="did you mean 'list_calls'"):
        manifest.load_manifest().tool("list_call")


def test_defaults_from_the_schema_are_filled_in() -> None:
    spec = manifest.load_manifest().tool("list_calls")
    assert spec.validate_arguments({})["limit"] == 20


def test_a_result_that_breaks_its_schema_is_an_internal_error() -> None:
    spec = manifest.load_manifest().tool("list_contacts")
    with pytest.raises(InternalError, match="breaks its declared shape"):
        spec.validate_result({"contacts": [{"name": "x"}]})
