"""The MCP server, spoken to by the official SDK's own client over stdio: the tool list
is the manifest's, results are the CLI's JSON, errors are tool errors carrying the error
document, and a whole call runs on the simulator (the background server the MCP server
starts is stopped at the end)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import TEST_CONFIG
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from twilio_caller.export import export
from twilio_caller.manifest import load_manifest

# Until `twilio-caller mcp` is wired, the server is started through its module.
SERVER_COMMAND = ["-m", "twilio_caller", "mcp"]


@pytest.fixture
def mcp_home(home: Path) -> Iterator[Path]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(TEST_CONFIG.format(hold=0.5, unsteered=5), encoding="utf-8")
    yield home
    subprocess.run([sys.executable, "-m", "twilio_caller", "server", "stop"], env=_environment(home),
                   capture_output=True, timeout=60, check=False)


def _environment(home: Path) -> dict[str, str]:
    return {**os.environ, "TWILIO_CALLER_HOME": str(home), "TWILIO_CALLER_SIMULATE": "1",
            "NO_PROXY": "127.0.0.1,localhost"}


def with_client(home: Path, session: Callable[[Client], Awaitable[Any]]) -> Any:
    parameters = StdioServerParameters(command=sys.executable, args=SERVER_COMMAND, env=_environment(home))

    async def main() -> Any:
        async with Client(parameters, read_timeout_seconds=120) as client:
            return await session(client)

    return anyio.run(main)


async def call(client: Client, name: str, /, **arguments: Any) -> tuple[dict[str, Any], bool]:
    result = await client.call_tool(name, arguments)
    assert len(result.content) == 1 and result.content[0].type == "text"
    document = json.loads(result.content[0].text)
    assert result.structured_content == document
    if not result.is_error:
        schema = next(tool for tool in export("mcp") if tool["name"] == name)["outputSchema"]
        assert list(Draft202012Validator(schema).iter_errors(document)) == []
    return document, result.is_error


def test_the_tools_are_the_manifests(mcp_home: Path) -> None:
    listed = with_client(mcp_home, lambda client: client.list_tools())
    tools = load_manifest().tools
    assert [tool.name for tool in listed.tools] == list(tools)
    for tool in listed.tools:
        assert tool.input_schema == tools[tool.name].parameters
        assert tool.description == tools[tool.name].description
        assert tool.annotations.read_only_hint is (not tools[tool.name].side_effecting)
        assert tool.output_schema["type"] == "object"
        assert not {"oneOf", "anyOf", "allOf"} & set(tool.output_schema)
        Draft202012Validator.check_schema(tool.output_schema)
    hints = {tool.name: tool.annotations for tool in listed.tools}
    assert {name for name, hint in hints.items() if hint.destructive_hint} == {
        "remove_contact", "purge_calls", "update_contact"}
    assert {name for name, hint in hints.items() if hint.read_only_hint} >= {
        "list_contacts", "list_calls", "call_status", "safety_rules"}
    assert {name for name, hint in hints.items() if hint.open_world_hint} == {
        "call", "say", "wait", "hangup", "press", "run_command"}


def test_every_result_a_tool_may_give_fits_its_output_schema() -> None:
    """Each tool's output schema accepts every shape its `returns` accepts (the branches of
    `call`: a placed call, a dry run, a scheduled call; of `wait` and `call_status`: a call or
    a scheduled call) and still requires what all of them require."""
    from twilio_caller.export import export

    schemas = {tool["name"]: tool["outputSchema"] for tool in export("mcp")}
    call_schema = schemas["call"]
    branched = {name: spec for name, spec in load_manifest().tools.items() if "oneOf" in spec.returns}
    assert set(branched) == {"call", "wait", "call_status"}
    for name, spec in branched.items():
        for branch in spec.returns["oneOf"]:
            example = {key: _example(member) for key, member in branch["properties"].items()}
            assert _errors(branch, example) == []
            assert _errors(schemas[name], example) == []
    assert _errors(call_schema, {"to": {"name": None, "number": "+13125550101"}, "message": "hi",
                                 "surprise": 1}) != []
    assert set(call_schema["required"]) == {"to", "message"}


def _example(member: dict[str, Any]) -> Any:
    if "const" in member:
        return member["const"]
    if "enum" in member:
        return member["enum"][-1]
    if "oneOf" in member:
        return None
    kind = member["type"][0] if isinstance(member["type"], list) else member["type"]
    return {"string": "x", "integer": 1, "number": 0.5, "boolean": True, "array": [], "null": None,
            "object": {key: _example(inner) for key, inner in member.get("properties", {}).items()}}[kind]


def _errors(schema: dict[str, Any], instance: Any) -> list[Any]:
    return list(Draft202012Validator(schema).iter_errors(instance))


def test_results_and_errors(mcp_home: Path) -> None:
    async def session(client: Client) -> None:
        added, failed = await call(client, "add_contact", name="Contact1", number="312-555-0101")
        assert not failed and added["number"] == "+13125550101"
        listed, _ = await call(client, "list_contacts")
        assert [c["name"] for c in listed["contacts"]] == ["Contact1"]
        taken, failed = await call(client, "add_contact", name="contact1", number="312-555-0102")
        assert failed and taken["error"]["code"] == "conflict" and taken["error"]["field"] == "name"
        invalid, failed = await call(client, "call", to="Contact1")
        assert failed and invalid == {"error": {"code": "invalid_input",
                                                "message": "call: missing required field 'message'"}}
        unknown, failed = await call(client, "dial", to="Contact1")
        assert failed and unknown["error"]["code"] == "unknown_tool"
        refused, failed = await call(client, "call", to="911", message="help")
        assert failed and refused["error"]["code"] == "refused" and refused["error"]["rule"] == "never_dial"
        missing, failed = await call(client, "call_status", call_id="call_nope")
        assert failed and missing["error"]["code"] == "not_found"
        for document in (taken, invalid, unknown, refused, missing):
            assert "Traceback" not in json.dumps(document)

    with_client(mcp_home, session)


def test_a_whole_simulated_call(mcp_home: Path) -> None:
    async def session(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
        await call(client, "add_contact", name="Contact2", number="312-555-0102", timezone="America/Chicago")
        dry, failed = await call(client, "call", to="Contact2", message="Dinner at eight?", dry_run=True)
        assert not failed and dry["allowed"] is True
        answered, failed = await call(client, "call", to="Contact2", message="Dinner at eight?",
                                      keep_open=True, timeout_seconds=60)
        assert not failed and answered["ended"] is False
        final, failed = await call(client, "hangup", call_id=answered["call_id"], message="Bye!")
        assert not failed
        return answered, final

    answered, final = with_client(mcp_home, session)
    assert answered["to"] == {"name": "Contact2", "number": "+13125550102"}
    assert answered["reply"]["text"] == "Okay, thanks" and answered["reply"]["untrusted"] is True
    assert final["status"] == "completed" and final["ended"] is True
    spoken = [turn["text"] for turn in final["transcript"] if turn["speaker"] == "assistant"]
    assert spoken == ["Hi, this is Yamani, Robert's AI assistant.", "Dinner at eight?", "Bye!"]
    assert (mcp_home / "run" / "server.json").exists()  # the MCP server started the background server


def test_a_long_wait_reports_progress(mcp_home: Path) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def session(client: Client) -> dict[str, Any]:
        await call(client, "add_contact", name="Contact2", number="312-555-0102", timezone="America/Chicago")
        answered, _ = await call(client, "call", to="Contact2", message="Dinner at eight?", keep_open=True)
        progress.clear()
        # nobody steers the call: it is closed after the unsteered limit (5 s in mcp_home)
        result = await client.call_tool("wait", {"call_id": answered["call_id"], "until": "end",
                                                 "timeout_seconds": 30}, progress_callback=on_progress)
        return result.structured_content

    ended = with_client(mcp_home, session)
    assert ended["ended"] is True
    assert len(progress) >= 2
    values = [value for value, _, _ in progress]
    assert values == sorted(values) and values[-1] > values[0]
    assert all(total == 30 for _, total, _ in progress)
    assert all(message.startswith("wait: waiting") for _, _, message in progress)
