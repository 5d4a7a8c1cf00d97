"""What the callee hears, end to end: ElevenLabs audio played (and its fallback), voicemail
drops after the beep, and DTMF digits — through the simulator, which fetches every <Play>."""

from __future__ import annotations

from pathlib import Path


from conftest import LiveServer
from elevenlabs_standin import API_KEY, VOICE_ID, StandIn

OPENING = "Hi, this is Yamani, Robert's AI assistant."


def serve(home: Path, extra: str = "") -> LiveServer:
    return LiveServer(home, time_scale=50, hold=0.3, unsteered=5, extra_config=extra)


def elevenlabs_config(stand_in: StandIn) -> str:
    return (f"elevenlabs: {{api_base_url: '{stand_in.base_url}', voice_id: {VOICE_ID},"
            f" api_key: {API_KEY}, budget_seconds: 5}}\n")


def test_elevenlabs_audio_is_generated_before_dialing_and_played(home: Path, eleven: StandIn) -> None:
    with serve(home, elevenlabs_config(eleven)) as server:
        result = server.tool("call", to="Contact1", message="Your table is ready")
        record = server.simulator.call(result["twilio_sid"])
        played = [u for u in record.heard if u.kind == "play"]
        assert len(played) == 3  # opening, message, goodbye
        assert not record.error_codes  # every <Play> URL answered 200 with an audio type
        texts = {r["json"]["text"] for r in eleven.requests}
        assert {OPENING, "Your table is ready", "Goodbye."} <= texts
        assert all(r["headers"]["xi-api-key"] == API_KEY for r in eleven.requests)
        assert [t["text"] for t in result["transcript"]] == [OPENING, "Your table is ready", "Goodbye."]
        assert result["audio_fallbacks"] == []
        asked = len(eleven.requests)
        server.tool("call", to="Contact2", message="Your table is ready")
        assert len(eleven.requests) == asked  # all three lines came from the cache


def test_elevenlabs_failures_fall_back_to_say_and_are_reported(home: Path, eleven: StandIn) -> None:
    eleven.mode = 500
    with serve(home, elevenlabs_config(eleven)) as server:
        result = server.tool("call", to="Contact1", message="Hello there")
        assert result["status"] == "completed"
        record = server.simulator.call(result["twilio_sid"])
        assert [u.kind for u in record.heard] == ["say", "say", "say"]
        assert {f["reason"] for f in result["audio_fallbacks"]} == {"server-error"}
        assert API_KEY not in str(result)


def test_a_machine_gets_the_message_after_the_beep(live_server) -> None:
    live_server.script("Contact3", answer="machine", greeting_seconds=4)
    result = live_server.tool("call", to="Contact3", message="Call Robert back about Friday")
    assert result["answered_by"] == "machine" and result["voicemail_left"] is True
    record = live_server.simulator.call(result["twilio_sid"])
    assert any("Call Robert back about Friday" in u.text for u in record.voicemail)


def test_voicemail_mode_hang_up_leaves_nothing(home: Path) -> None:
    with serve(home, "voicemail: {mode: hang-up}\n") as server:
        server.script("Contact4", answer="machine", greeting_seconds=2)
        result = server.tool("call", to="Contact4", message="Secret plans")
        assert result["answered_by"] == "machine" and result["voicemail_left"] is False
        assert server.simulator.call(result["twilio_sid"]).voicemail == []


def test_send_digits_navigates_a_menu_and_turns_detection_off(live_server) -> None:
    result = live_server.tool("call", to="Contact5", message="Hello", send_digits="1w2#")
    record = live_server.simulator.call(result["twilio_sid"])
    assert record.sent_digits == ["1w2#"]
    assert result["answered_by"] == "unknown"


def test_press_sends_digits_into_a_live_call(live_server) -> None:
    live_server.script("Contact6", replies=[{"say": "Press 1 for sales"}, {"say": "Sales here"}])
    placed = live_server.tool("call", to="Contact6", message="Hello", keep_open=True)
    pressed = live_server.tool("press", call_id=placed["call_id"], digits="1")
    assert pressed["ended"] is False
    reply = live_server.tool("say", call_id=placed["call_id"], message="Hi sales")
    assert reply["reply"]["text"] == "Sales here"
    heard = live_server.simulator.call(placed["twilio_sid"]).heard
    assert [(u.kind, u.text) for u in heard][-2:] == [("digits", "1"), ("say", "Hi sales")]
    live_server.tool("hangup", call_id=placed["call_id"])


def test_phrases_generate_and_list_from_the_cli(home: Path, eleven: StandIn, capsys) -> None:
    import json

    from twilio_caller.cli import main

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(elevenlabs_config(eleven))
    assert main(["phrases", "generate", "--json"]) == 0
    generated = json.loads(capsys.readouterr().out)["phrases"]
    assert {p["status"] for p in generated} == {"generated"}
    assert main(["phrases", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["phrases"]
    assert {p["text"] for p in listed} >= {"Thanks for calling.", OPENING}
    assert main(["phrases", "generate"]) == 0
    assert "already cached" in capsys.readouterr().out
