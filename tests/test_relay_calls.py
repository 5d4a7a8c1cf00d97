"""Whole calls on the relay engine (`conversation.engine: relay`): the agent's tools and
results as with Gather, the simulator playing Twilio's ConversationRelay — the voice request
answered with <Connect><ConversationRelay>, a signed socket, setup, prompts and keys, an
interruption, the agent's hang-up as `end`, and the <Connect action> URL closing the call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest
from twilio.request_validator import RequestValidator

from conftest import LiveServer
from polling import eventually
from twilio_caller.errors import ConfigError
from twilio_caller.server.runfile import read_run_file
from twilio_caller.transport.twilio import relay


def said(result: dict, speaker: str) -> list[str]:
    return [turn["text"] for turn in result["transcript"] if turn["speaker"] == speaker]


@pytest.fixture
def relay_server(home: Path) -> Iterator[LiveServer]:
    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=30)
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("conversation:\n", "conversation:\n  engine: relay\n"))
    server.thread.start()
    yield server
    server.thread.stop()
    server.runtime.close()


def connect_and_action(server: LiveServer, sid: str) -> list[tuple[str, int | None]]:
    record = server.simulator.call(sid)
    return [(request.purpose, request.status_code) for request in record.requests
            if request.purpose not in ("status-callback", "amd-callback")]


def test_an_interactive_call_gets_its_reply_over_the_socket_and_ends_through_the_action(relay_server) -> None:
    relay_server.script("Contact2", replies=[{"say": "Sure, see you at eight", "confidence": 0.94}])
    result = relay_server.tool("call", to="Contact2", message="Dinner at eight?", interactive=True)
    assert result["reply"]["text"] == "Sure, see you at eight"
    final = relay_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    assert final["status"] == "completed"
    assert said(final, "callee") == ["Sure, see you at eight"]
    assert said(final, "assistant")[-1] == "Thanks, I'll pass that on. Goodbye."
    record = relay_server.simulator.call(result["twilio_sid"])
    assert record.wait(10)
    assert record.heard_text[-1] == "Thanks, I'll pass that on. Goodbye."
    assert connect_and_action(relay_server, result["twilio_sid"]) == [("voice", 200), ("relay", 101), ("action", 200)]
    action = [r for r in record.requests if r.purpose == "action"][0]
    assert action.url.endswith("/handoff") and action.params["SessionStatus"] == "ended"
    assert record.end_reason == "hangup" and not [e for e in record.errors if e.fatal]


def test_a_kept_open_call_streams_says_records_an_interruption_and_hangs_up(relay_server) -> None:
    relay_server.script("Contact6", replies=[
        {"say": "Hi! What's up?"},
        {"say": "Wait, which Friday?", "interrupt_after": 2},
        {"digits": "42"},
    ])
    first = relay_server.tool("call", to="Contact6", message="Quick question", keep_open=True)
    assert first["reply"]["text"] == "Hi! What's up?" and first["ended"] is False
    second = relay_server.tool("say", call_id=first["call_id"], message="Does Friday work? It is the tenth.")
    assert second["reply"]["text"] == "Wait, which Friday?"
    third = relay_server.tool("say", call_id=first["call_id"], message="Please enter your code.")
    assert third["reply"]["text"] == "42"
    ended = relay_server.tool("hangup", call_id=first["call_id"], message="Goodbye!")
    assert ended["ended"] is True
    assert eventually(lambda: relay_server.simulator.call(first["twilio_sid"]).is_over)
    record = relay_server.simulator.call(first["twilio_sid"])
    assert "Does Friday" in record.heard_text and record.heard_text[-1] == "Goodbye!"
    assert "Does Friday work? It is the tenth." not in record.heard_text  # cut after two words
    events = relay_server.runtime.store.query(
        "SELECT payload FROM events WHERE call_id = ? AND kind = 'interrupted'", (first["call_id"],))
    assert [row[0] for row in events] == ['{"heard": "Does Friday"}']
    assert said(ended, "assistant")[-1] == "Goodbye!"


def test_a_dropped_socket_hands_the_live_call_to_the_action_url_which_carries_it_on(relay_server) -> None:
    relay_server.script("Contact7", replies=[{"say": "Go ahead"}])
    first = relay_server.tool("call", to="Contact7", message="I have news", keep_open=True)
    call_id = first["call_id"]
    token = relay_server.runtime.store.query("SELECT token FROM calls WHERE id = ?", (call_id,))[0][0]
    port = read_run_file(relay_server.runtime.home)["webhook_port"]
    local = f"http://127.0.0.1:{port}"
    path = f"/twilio/{call_id}/{token}/handoff"
    form = {"CallSid": first["twilio_sid"], "CallStatus": "in-progress", "SessionStatus": "failed",
            "ErrorCode": "64105"}
    validator = RequestValidator(relay_server.simulator.auth_token)
    forged = httpx.post(local + path, data=form, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}, trust_env=False)
    assert forged.status_code == 403
    signed = {"X-Twilio-Signature": validator.compute_signature(local + path, form)}
    answer = httpx.post(local + path, data=form, headers=signed, trust_env=False)
    assert answer.status_code == 200
    document = ET.fromstring(answer.text)
    socket = document.find("Connect/ConversationRelay")
    assert [verb.tag for verb in document] == ["Connect"] and socket is not None
    assert socket.get("url", "").startswith(f"ws://127.0.0.1:{port}/relay/{call_id}/{token}?resume=")
    assert relay.HANDOFF_APOLOGY not in [t["text"] for t in relay_server.tool("hangup", call_id=call_id)["transcript"]]


def test_an_unknown_engine_in_the_config_is_refused_before_dialing(relay_server) -> None:
    config = relay_server.runtime.home / "config.yaml"
    config.write_text(config.read_text().replace("engine: relay", "engine: websocket"))
    with pytest.raises(ConfigError, match="engine"):
        relay_server.tool("call", to="Contact9", message="Hello")
    assert relay_server.simulator.calls == []


def test_a_machine_on_a_relay_call_gets_the_voicemail_through_twiml(relay_server) -> None:
    relay_server.script("Contact9", answer="machine", greeting_seconds=1)
    result = relay_server.tool("call", to="Contact9", message="Your order is ready")
    assert result["ended"] is True
    assert result["answered_by"] == "machine" and result["voicemail_left"] is True
    record = relay_server.simulator.call(result["twilio_sid"])
    assert record.wait(10)
    assert any("Your order is ready" in utterance.text for utterance in record.voicemail)
