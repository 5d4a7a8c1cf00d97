"""What the callee hears while the agent thinks, end to end through the simulator: a hold
listens (words said meanwhile reach the agent, marked as said while waiting), and after a
configured delay the callee hears one short acknowledgement per wait."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import LiveServer
from polling import eventually

ACKS = ("Mm-hm, one moment.", "Just a moment.")
HOLDING_LINE = "oh and bring the receipts"


def serve(home: Path, acknowledge: float = 0) -> LiveServer:
    return LiveServer(home, time_scale=50, hold=0.3, unsteered=30, acknowledge=acknowledge)


@pytest.fixture
def quiet(home: Path) -> Iterator[LiveServer]:
    """Acknowledgements off: only what the callee says matters here."""
    with serve(home) as server:
        yield server


def test_words_said_while_held_reach_the_agent_marked_as_such(quiet: LiveServer) -> None:
    quiet.script("Contact11", replies=[{"say": "Hi"}], speak_while_holding=[{"say": HOLDING_LINE}])
    placed = quiet.tool("call", to="Contact11", message="Hello", keep_open=True)
    assert placed["reply"]["text"] == "Hi" and "while_waiting" not in placed["reply"]
    later = quiet.tool("wait", call_id=placed["call_id"], timeout_seconds=30)
    assert later["reply"] == {"text": HOLDING_LINE, "confidence": 0.9, "untrusted": True, "while_waiting": True}
    callee_lines = [t["text"] for t in later["transcript"] if t["speaker"] == "callee"]
    assert callee_lines == ["Hi", HOLDING_LINE]
    quiet.tool("hangup", call_id=placed["call_id"])
    record = quiet.simulator.call(placed["twilio_sid"])
    record.wait(10)
    assert record.experience.lost_words == 0


def test_say_hands_over_an_aside_first_and_wait_then_gets_the_answer(quiet: LiveServer) -> None:
    quiet.script("Contact14", replies=[{"say": "Hi"}, {"say": "Friday works"}],
                 speak_while_holding=[{"say": HOLDING_LINE}])
    placed = quiet.tool("call", to="Contact14", message="Hello", keep_open=True)
    call_id = placed["call_id"]
    assert eventually(lambda: HOLDING_LINE in [t["text"] for t in quiet.tool("call_status", call_id=call_id)["transcript"]])
    said = quiet.tool("say", call_id=call_id, message="Does Friday work?")
    assert said["reply"]["text"] == HOLDING_LINE and said["reply"]["while_waiting"] is True
    assert "Does Friday work?" in [t["text"] for t in said["transcript"]]  # the line was delivered
    answer = quiet.tool("wait", call_id=call_id, timeout_seconds=30)
    assert answer["reply"]["text"] == "Friday works" and "while_waiting" not in answer["reply"]
    quiet.tool("hangup", call_id=call_id)


def test_an_opt_out_said_while_held_ends_the_call(quiet: LiveServer) -> None:
    quiet.script("Contact12", replies=[{"say": "Hi"}], speak_while_holding=[{"say": "stop calling me"}])
    placed = quiet.tool("call", to="Contact12", message="Hello", keep_open=True)
    ended = quiet.tool("wait", call_id=placed["call_id"], until="end", timeout_seconds=30)
    assert ended["opted_out"] is True and ended["status"] == "completed"


def test_one_acknowledgement_per_wait(home: Path) -> None:
    with serve(home, acknowledge=0.2) as server:
        server.script("Contact13", replies=[{"say": "Hi"}, {"say": "Friday works"}])
        placed = server.tool("call", to="Contact13", message="Hello", keep_open=True)
        record = server.simulator.call(placed["twilio_sid"])

        def acks() -> list[str]:
            return [u.text for u in record.heard if u.text in ACKS]

        def holds() -> int:
            return sum(1 for r in record.requests if "/hold?n=" in r.url)

        assert eventually(lambda: len(acks()) == 1)
        seen = holds()
        assert eventually(lambda: holds() >= seen + 3)  # the wait goes on: no second one
        assert acks() == [ACKS[0]]
        reply = server.tool("say", call_id=placed["call_id"], message="Does Friday work?")
        assert reply["reply"]["text"] == "Friday works"
        assert eventually(lambda: len(acks()) == 2)  # a new wait, the next acknowledgement
        assert acks() == [ACKS[0], ACKS[1]]
        ended = server.tool("hangup", call_id=placed["call_id"])
        assert [t["text"] for t in ended["transcript"]].count(ACKS[0]) == 1


def test_latency_marks_reach_the_record_and_the_latency_command(quiet: LiveServer, capsys) -> None:
    import json

    from twilio_caller.cli import main

    quiet.script("Contact15", replies=[{"say": "Hi"}, {"say": "Friday works"}])
    placed = quiet.tool("call", to="Contact15", message="Hello", keep_open=True)
    said = quiet.tool("say", call_id=placed["call_id"], message="Does Friday work?")
    assert said["reply"]["text"] == "Friday works"
    quiet.tool("hangup", call_id=placed["call_id"])
    record = quiet.tool("call_status", call_id=placed["call_id"])
    figures = record["latency"]
    assert figures["pickup_to_first_audio_ms"] is not None and figures["pickup_to_first_audio_ms"] >= 0
    first = figures["turns"][0]
    assert first["turn"] == 1 and None not in first.values()  # reply → woke → said → served
    assert [turn["turn"] for turn in figures["turns"]] == [1, 2]
    listed = quiet.tool("list_calls", limit=1)["calls"][0]
    assert listed["latency"] == figures
    assert main(["latency", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["calls"] == 1
    assert summary["figures"]["pickup_to_first_audio_ms"]["samples"] == 1
    assert summary["figures"]["agent_woke_to_agent_said_ms"]["samples"] >= 1
    assert summary["figures"]["agent_said_to_served_ms"]["p95_ms"] is not None
