"""Every example runs: each callee script drives examples/agent_loop.py (a subprocess, offline,
against the simulator), and the example config and contact list load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from twilio_caller.config import load_config
from twilio_caller.runtime import Runtime
from twilio_caller.simulator import CalleeScript

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CALLEES = sorted((EXAMPLES / "callees").glob("*.yaml"))
OPENING = "assistant: Hi, this is Yamani, Robert's AI assistant."
EXPECTED = {  # per callee script: the tool calls the agent makes, how the call ends, voicemail
    "dinner.yaml": (["add_contact", "call", "say", "say", "hangup"], "completed", False),
    "busy.yaml": (["add_contact", "call"], "busy", False),
    "voicemail.yaml": (["add_contact", "call"], "completed", True),
    "hesitant.yaml": (["add_contact", "call", "say"], "completed", False),
}
DINNER = [
    OPENING,
    "assistant: Robert is running late for dinner, about twenty minutes. Is that alright?",
    "callee: Hi! Oh, that's a shame. What time will he get here?",
    "assistant: He'll be there by eight fifteen.",
    "callee: Eight fifteen is fine. Should we start without him?",
    "assistant: He says please go ahead and start, he'll catch up.",
    "callee: Okay, we'll keep a plate warm. Bye!",
    "assistant: Thanks, I'll tell him. Goodbye!",
]


def run_agent_loop(callee: Path) -> tuple[list[str], dict[str, Any]]:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "agent_loop.py"), "--callee", str(callee), "--time-scale", "50"],
        capture_output=True, text=True, timeout=120, cwd=EXAMPLES.parent, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[-1].startswith("summary ")
    return lines, json.loads(lines[-1].removeprefix("summary "))


def test_every_callee_script_has_an_expected_outcome_and_loads() -> None:
    assert sorted(path.name for path in CALLEES) == sorted(EXPECTED)
    for path in CALLEES:
        CalleeScript.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")), name=path.name)


@pytest.mark.parametrize("callee", CALLEES, ids=lambda path: path.stem)
def test_the_agent_loop_drives_a_call_with_each_callee(callee: Path) -> None:
    lines, summary = run_agent_loop(callee)
    tool_calls, status, voicemail_left = EXPECTED[callee.name]
    assert summary["tool_calls"] == tool_calls and summary["status"] == status
    assert summary["ended"] is True and summary["voicemail_left"] is voicemail_left
    shown = [line.split(" ", 2)[1] for line in lines if line.startswith("→ ")]
    assert shown == tool_calls
    assert len([line for line in lines if line.startswith("← ")]) == len(tool_calls)
    assert lines[0].startswith("tools offered to the model: add_contact,")
    script = yaml.safe_load(callee.read_text(encoding="utf-8"))
    said = [reply["say"] for reply in script.get("replies", []) if "say" in reply]
    heard = [turn.removeprefix("callee: ") for turn in summary["transcript"] if turn.startswith("callee: ")]
    assert heard == said[: len(heard)]
    if status == "completed":
        assert summary["transcript"][0] == OPENING
    if callee.name == "dinner.yaml":
        assert summary["transcript"] == DINNER




def test_the_example_config_is_valid(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text((EXAMPLES / "config.example.yaml").read_text(encoding="utf-8"))
    config = load_config(tmp_path, {})
    assert config.get("safety.calling_hours") == "07:00-23:00"
    assert config.get("safety.timezone") == "America/Chicago"
    assert config.get("voice.default") == "Polly.Brian"


def test_the_example_contacts_import(runtime: Runtime) -> None:
    imported = runtime.contacts.import_csv(EXAMPLES / "contacts.csv")
    assert len(imported) == 8
    assert all(contact.number.startswith("+1") for contact in imported)
