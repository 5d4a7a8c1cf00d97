"""The Gather engine's scenarios on both engines (`conversation.engine: gather|relay`): the same
tools, results, safety gate, transcript and store whichever engine carries the call — notify,
interactive, opt-out, voicemail (async and sync detection), the maximum duration, and a relay
call's `<Connect action>` (handoff) replayed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from twilio.request_validator import RequestValidator

from conftest import LiveServer
from polling import eventually
from twilio_caller.errors import RefusedError
from twilio_caller.server.runfile import read_run_file
from twilio_caller.transport.twilio import relay

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


@pytest.fixture
def relay_server(home: Path) -> Iterator[LiveServer]:
    server = serve(home, "relay")
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
def test_sync_detection_reports_who_answered_and_leaves_a_voicemail(home: Path, engine: str) -> None:
    server = serve(home, engine, "voicemail: {detection: sync}\n")
    try:
        server.script("Contact6", answer="human")
        human = server.tool("call", to="Contact6", message="Hello")
        assert human["answered_by"] == "human" and human["voicemail_left"] is False
        record = server.simulator.call(human["twilio_sid"])
        assert not record.options.async_amd
        assert heard(record) == f"{OPENING} Hello Goodbye."
        server.script("Contact7", answer="machine", greeting_seconds=2)
        machine = server.tool("call", to="Contact7", message="Call Robert back about Friday")
        assert machine["answered_by"] == "machine" and machine["voicemail_left"] is True
        voicemail = server.simulator.call(machine["twilio_sid"]).voicemail
        assert any("Call Robert back about Friday" in utterance.text for utterance in voicemail)
    finally:
        server.thread.stop()
        server.runtime.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_call_is_ended_at_its_maximum_duration(home: Path, engine: str) -> None:
    server = serve(home, engine)
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("safety:\n", "safety:\n  max_duration_seconds: 30\n"))
    try:
        server.script("Contact8", replies=[{"say": "Go on"}])
        first = server.tool("call", to="Contact8", message="A long story", keep_open=True)
        final = server.tool("wait", call_id=first["call_id"], until="end", timeout_seconds=30)
        assert final["ended"] is True and final["status"] == "completed"
        record = server.simulator.call(first["twilio_sid"])
        assert record.wait(10) and record.duration is not None and record.duration <= 35
    finally:
        server.thread.stop()
        server.runtime.close()


def post_handoff(server: LiveServer, call_id: str, sid: str) -> httpx.Response:
    token = server.runtime.store.query("SELECT token FROM calls WHERE id = ?", (call_id,))[0][0]
    url = f"http://127.0.0.1:{read_run_file(server.runtime.home)['webhook_port']}/twilio/{call_id}/{token}/handoff"
    form = {"CallSid": sid, "CallStatus": "in-progress", "SessionStatus": "failed"}
    signature = RequestValidator(server.simulator.auth_token).compute_signature(url, form)
    return httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}, trust_env=False)


def test_a_replayed_handoff_gets_the_answer_on_record_and_changes_nothing(relay_server: LiveServer) -> None:
    relay_server.script("Contact9", replies=[{"say": "Go ahead"}])
    first = relay_server.tool("call", to="Contact9", message="I have news", keep_open=True)
    call_id, sid = first["call_id"], first["twilio_sid"]
    answer = post_handoff(relay_server, call_id, sid)
    assert answer.status_code == 200
    assert [(verb.tag, verb.text) for verb in ET.fromstring(answer.text)] == [
        ("Say", relay.HANDOFF_APOLOGY), ("Hangup", None)]
    replay = post_handoff(relay_server, call_id, sid)
    assert replay.status_code == 200 and replay.text == answer.text
    transcript = relay_server.tool("call_status", call_id=call_id)["transcript"]
    assert [t["text"] for t in transcript].count(relay.HANDOFF_APOLOGY) == 1
    queued = relay_server.tool("hangup", call_id=call_id)
    assert [t["text"] for t in queued["transcript"]].count(relay.HANDOFF_APOLOGY) == 1


def test_after_our_end_the_handoff_only_hangs_up(relay_server: LiveServer) -> None:
    relay_server.script("Contact10", replies=[{"say": "Bye then"}])
    result = relay_server.tool("call", to="Contact10", message="Just checking", interactive=True)
    final = relay_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    record = relay_server.simulator.call(result["twilio_sid"])
    assert record.wait(10)
    assert relay.HANDOFF_APOLOGY not in record.heard_text
    assert relay.HANDOFF_APOLOGY not in said(final, "assistant")
    replay = post_handoff(relay_server, result["call_id"], result["twilio_sid"])
    assert [verb.tag for verb in ET.fromstring(replay.text)] == ["Hangup"]
