"""`demo --engine relay`: the offline demo call on the ConversationRelay engine, with the same
output as the Gather demo (the live conversation on stderr, the tool result on stdout)."""

from __future__ import annotations

import json
from pathlib import Path

from twilio_caller.cli import main
from twilio_caller.demo import DEMO_MESSAGE, DEMO_REPLY


def test_the_demo_runs_on_the_relay_engine_with_the_same_output(capsys, home: Path) -> None:
    code = main(["demo", "--engine", "relay", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    result = json.loads(out)
    assert result["reply"] == {"text": DEMO_REPLY, "confidence": None, "untrusted": True}  # a prompt has none
    assert result["to"]["name"] == "Contact1"
    assert DEMO_MESSAGE in [turn["text"] for turn in result["transcript"]]
    assert "relay engine" in err and "dialing Contact1" in err and "completed" in err
    assert not home.exists()  # the demo used a throw-away home


def test_an_unknown_demo_engine_is_refused_with_the_choices(capsys) -> None:
    code = main(["demo", "--engine", "websocket"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "invalid choice: 'websocket' (choose from 'gather', 'relay')" in err
