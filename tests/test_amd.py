"""Answering-machine detection as `voicemail.detection` sets it, through the simulator:
async (the default) greets at once and moves to the voicemail path when a machine is reported
later; sync is silent until detection decides; off detects nothing. The AMD callback is a
signed, replay-safe webhook route: a repeat, or a result for an ended call, changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import LiveServer
from polling import eventually
from test_webhook import Hook
from twilio_caller.simulator.engine import HUMAN_DETECTION_SECONDS

VOICEMAIL_LINE = "I'm calling with a message: Call Robert back about Friday"


def serve(home: Path, extra: str = "", *, unsteered: float = 60) -> LiveServer:
    """A live server; a call waits for asynchronous detection no longer than `unsteered`
    seconds of real time, which must outlast the detection callback on a busy machine (else
    the goodbye meant for a person is what the machine records)."""
    return LiveServer(home, time_scale=50, hold=0.3, unsteered=unsteered, extra_config=extra)


@pytest.fixture
def server(home: Path) -> Iterator[LiveServer]:
    with serve(home) as running:
        yield running


def amd_events(server: LiveServer, call_id: str) -> list[str]:
    rows = server.runtime.store.query("SELECT status FROM events WHERE call_id = ? AND kind = 'amd' ORDER BY id",
                                      (call_id,))
    return [row[0] for row in rows]


def test_async_is_the_default_and_a_person_hears_the_greeting_at_pickup(server: LiveServer) -> None:
    server.script("Contact1", answer="human", ring_seconds=1)
    result = server.tool("call", to="Contact1", message="Your table is ready")
    record = server.simulator.call(result["twilio_sid"])
    assert record.options.machine_detection == "DetectMessageEnd" and record.options.async_amd
    assert record.options.async_amd_status_callback.endswith(f"/twilio/{result['call_id']}/"
                                                             f"{_token(server, result['call_id'])}/amd")
    (voice,) = [r for r in record.requests if r.purpose == "voice"]
    assert "AnsweredBy" not in voice.params  # fetched at pickup, not after the decision
    (amd,) = [r for r in record.requests if r.purpose == "amd-callback"]
    assert amd.params["AnsweredBy"] == "human" and amd.status_code == 204
    assert result["answered_by"] == "human" and result["voicemail_left"] is False
    assert [t["text"] for t in result["transcript"]][1:] == ["Your table is ready", "Goodbye."]
    assert amd_events(server, result["call_id"]) == ["human"]


def test_async_a_machine_gets_the_message_after_the_beep(server: LiveServer) -> None:
    server.script("Contact2", answer="machine", greeting_seconds=6)
    result = server.tool("call", to="Contact2", message="Call Robert back about Friday")
    assert result["answered_by"] == "machine" and result["voicemail_left"] is True
    record = server.simulator.call(result["twilio_sid"])
    assert VOICEMAIL_LINE in [u.text for u in record.voicemail]  # all of it, after the beep
    assert [t["text"] for t in result["transcript"]].count(VOICEMAIL_LINE) == 1
    assert amd_events(server, result["call_id"]) == ["machine"]
    hold_fetches = [r for r in record.requests if r.purpose == "update" and "/hold?n=" in r.url]
    assert hold_fetches, "the live call was moved to the voicemail answer through the Calls API"


def test_async_hang_up_mode_leaves_no_message(home: Path) -> None:
    with serve(home, "voicemail: {mode: hang-up}\n") as server:
        server.script("Contact3", answer="machine", greeting_seconds=6)
        result = server.tool("call", to="Contact3", message="Secret plans")
        assert result["answered_by"] == "machine" and result["voicemail_left"] is False
        record = server.simulator.call(result["twilio_sid"])
        assert not any("calling with a message" in u.text for u in record.heard)
        assert record.status == "completed"


def test_sync_waits_for_the_decision_before_the_first_fetch(home: Path) -> None:
    with serve(home, "voicemail: {detection: sync}\n") as server:
        server.script("Contact4", answer="human")
        result = server.tool("call", to="Contact4", message="Hello")
        record = server.simulator.call(result["twilio_sid"])
        assert record.options.machine_detection == "DetectMessageEnd" and not record.options.async_amd
        (voice,) = [r for r in record.requests if r.purpose == "voice"]
        assert voice.params["AnsweredBy"] == "human"
        assert record.experience.pickup_to_first_audio >= HUMAN_DETECTION_SECONDS  # silence while it decides
        assert not [r for r in record.requests if r.purpose == "amd-callback"]
        server.script("Contact5", answer="machine", greeting_seconds=4)
        machine = server.tool("call", to="Contact5", message="Call Robert back about Friday")
        assert machine["answered_by"] == "machine" and machine["voicemail_left"] is True
        assert VOICEMAIL_LINE in [u.text for u in server.simulator.call(machine["twilio_sid"]).voicemail]


def test_off_detects_nothing(home: Path) -> None:
    with serve(home, "voicemail: {detection: 'off'}\n") as server:
        server.script("Contact6", answer="machine", greeting_seconds=2)
        result = server.tool("call", to="Contact6", message="Hello")
        record = server.simulator.call(result["twilio_sid"])
        assert record.options.machine_detection is None and not record.options.async_amd
        assert result["answered_by"] is None and result["voicemail_left"] is False
        assert [t["text"] for t in result["transcript"]][1:] == ["Hello", "Goodbye."]  # spoken as to a person


def test_a_bad_detection_value_is_refused_with_the_key(home: Path) -> None:
    from twilio_caller.config import load_config
    from twilio_caller.errors import ConfigError

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text("voicemail: {detection: later}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(home, environ={})
    assert "voicemail.detection" in raised.value.message


def test_the_amd_callback_is_signed_replay_safe_and_late_results_change_nothing(home: Path) -> None:
    with serve(home, unsteered=30) as server:
        server.script("Contact7", answer="human", replies=[{"say": "Hi"}])
        placed = server.tool("call", to="Contact7", message="Hello", keep_open=True)
        hook = Hook(server, placed, None)
        call_id = placed["call_id"]
        assert eventually(lambda: amd_events(server, call_id) == ["human"])
        machine = hook.form(AnsweredBy="machine_end_beep", MachineDetectionDuration="4100")
        forged = hook.post(hook.path("amd"), machine, signature="Zm9yZ2Vk")
        assert forged.status_code == 403 and amd_events(server, call_id) == ["human"]
        unknown_value = hook.post(hook.path("amd"), hook.form(AnsweredBy="robot"))
        assert unknown_value.status_code == 400 and amd_events(server, call_id) == ["human"]
        assert hook.post(hook.path("amd"), machine).status_code == 204
        assert hook.post(hook.path("amd"), machine).status_code == 204  # a replay
        assert amd_events(server, call_id) == ["human", "machine"]
        ended = server.tool("wait", call_id=call_id, until="end", timeout_seconds=30)
        assert ended["ended"] and ended["voicemail_left"] is True
        texts = [t["text"] for t in ended["transcript"]]
        assert texts.count("I'm calling with a message: Hello") == 1
        late = hook.post(hook.path("amd"), hook.form(AnsweredBy="fax", MachineDetectionDuration="9000"))
        assert late.status_code == 204
        after = server.tool("call_status", call_id=call_id)
        assert amd_events(server, call_id) == ["human", "machine"]
        assert after["transcript"] == ended["transcript"] and after["answered_by"] == ended["answered_by"]


def _token(server: LiveServer, call_id: str) -> str:
    return str(server.runtime.store.query("SELECT token FROM calls WHERE id = ?", (call_id,))[0][0])
