"""The Gather engine's scenarios on both engines (`conversation.engine: gather|relay`): the same
tools, results, safety gate, transcript and store whichever engine carries the call — notify,
kept-open turns through separate tool calls and separate processes, opt-out, voicemail, the maximum duration.
The webhook's own relay paths (handoff replays, sync detection) are in test_relay_webhook.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LiveServer
from polling import eventually
from twilio_caller.errors import RefusedError

OPENING = "Hi, this is Yamani, Robert's AI assistant."
ENGINES = ["gather", "relay"]


def said(result: dict, speaker: str) -> list[str]:
    return [turn["text"] for turn in result["transcript"] if turn["speaker"] == speaker]


def heard(record: Any) -> str:
    """What the callee heard, as one text (Gather hears a line per <Say>, relay a line per turn)."""
    return " ".join(record.heard_text)


def serve(home: Path, engine: str, extra: str = "") -> LiveServer:
    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=30, extra_config=extra)
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("conversation:\n", f"conversation:\n  engine: {engine}\n"))
    server.thread.start()
    return server


@pytest.fixture(params=ENGINES)
def engine_server(request: pytest.FixtureRequest, home: Path) -> Iterator[LiveServer]:
    server = serve(home, request.param)
    yield server
    server.thread.stop()
    server.runtime.close()


def test_a_notify_call_says_the_message_and_completes(engine_server: LiveServer) -> None:
    result = engine_server.tool("call", to="Contact1", message="I'll be late")
    assert result["status"] == "completed" and result["ended"] is True
    assert said(result, "assistant") == [OPENING, "I'll be late", "Goodbye."]
    assert result["reply"] is None and result["no_reply_reason"] is None
    record = engine_server.simulator.call(result["twilio_sid"])
    assert record.wait(10)
    assert heard(record) == f"{OPENING} I'll be late Goodbye."  # relay: a turn is one utterance


def test_an_interactive_call_returns_the_reply_and_closes(engine_server: LiveServer) -> None:
    engine_server.script("Contact2", replies=[{"say": "Sure, see you at eight", "confidence": 0.94}])
    result = engine_server.tool("call", to="Contact2", message="Dinner at eight?", interactive=True)
    assert result["reply"]["text"] == "Sure, see you at eight"
    final = engine_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    assert final["status"] == "completed"
    assert said(final, "callee") == ["Sure, see you at eight"]
    assert said(final, "assistant") == [OPENING, "Dinner at eight?", "Thanks, I'll pass that on. Goodbye."]


def test_a_kept_open_call_goes_on_turn_by_turn_through_separate_tool_calls(engine_server: LiveServer) -> None:
    engine_server.script("Contact3", replies=[{"say": "Hello there"}, {"say": "Friday is fine"}])
    first = engine_server.tool("call", to="Contact3", message="Quick question", keep_open=True)
    assert first["reply"]["text"] == "Hello there" and first["ended"] is False
    second = engine_server.tool("say", call_id=first["call_id"], message="Does Friday work?")
    assert second["reply"]["text"] == "Friday is fine"
    ended = engine_server.tool("hangup", call_id=first["call_id"], message="Thanks, bye!")
    assert ended["ended"] is True
    assert said(ended, "callee") == ["Hello there", "Friday is fine"]
    assert said(ended, "assistant")[-1] == "Thanks, bye!"
    assert eventually(lambda: engine_server.simulator.call(first["twilio_sid"]).is_over)
    assert engine_server.simulator.call(first["twilio_sid"]).heard_text[-1] == "Thanks, bye!"


def test_a_reply_in_keys_is_the_reply_on_both_engines(engine_server: LiveServer) -> None:
    """A callee who answers on the keypad (a menu, a PIN): the keys up to `#` are the reply —
    Gather listens for keys as well as speech (`input="dtmf speech"`), as relay's dtmfDetection does."""
    engine_server.script("Contact4", replies=[{"digits": "42#"}, {"say": "Yes"}])
    first = engine_server.tool("call", to="Contact4", message="Your room number?", keep_open=True)
    assert first["reply"]["text"] == "42" and first["no_reply_reason"] is None
    second = engine_server.tool("say", call_id=first["call_id"], message="Room 42, right?")
    assert second["reply"]["text"] == "Yes"
    ended = engine_server.tool("hangup", call_id=first["call_id"])
    assert said(ended, "callee") == ["42", "Yes"]
    assert said(ended, "assistant").count("Your room number?") == 1  # heard the first time: no reprompt


def test_a_callee_who_opts_out_is_never_called_again(engine_server: LiveServer) -> None:
    engine_server.script("Contact4", replies=[{"say": "Please don't call me again"}])
    result = engine_server.tool("call", to="Contact4", message="Hello", interactive=True)
    assert result["opted_out"] is True
    final = engine_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    assert said(final, "assistant")[-1] == "Understood. You won't get calls from me again. Goodbye."
    placed = len(engine_server.simulator.calls)
    with pytest.raises(RefusedError) as refused:
        engine_server.tool("call", to="Contact4", message="Hello again")
    assert refused.value.rule == "opted_out"
    assert len(engine_server.simulator.calls) == placed  # nothing reached the Calls API


def test_a_machine_gets_the_voicemail(engine_server: LiveServer) -> None:
    engine_server.script("Contact5", answer="machine", greeting_seconds=1)
    result = engine_server.tool("call", to="Contact5", message="Your order is ready")
    assert result["answered_by"] == "machine" and result["voicemail_left"] is True
    record = engine_server.simulator.call(result["twilio_sid"])
    assert record.wait(10)
    assert any("Your order is ready" in utterance.text for utterance in record.voicemail)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_call_is_ended_at_its_maximum_duration(home: Path, engine: str) -> None:
    server = serve(home, engine)
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("safety:\n", "safety:\n  max_duration_seconds: 10\n"))
    try:
        server.script("Contact8", replies=[{"say": "Go on"}])
        first = server.tool("call", to="Contact8", message="A long story", keep_open=True)
        final = server.tool("wait", call_id=first["call_id"], until="end", timeout_seconds=30)
        assert final["ended"] is True and final["status"] == "completed"
        record = server.simulator.call(first["twilio_sid"])
        assert record.wait(10) and record.duration is not None and record.duration <= 15
    finally:
        server.thread.stop()
        server.runtime.close()
