"""What a waiting tool that followed its call returns (server/follow.py); following itself,
with servers killed mid-call, is proven in tests/test_crash.py."""

from __future__ import annotations

from pathlib import Path

from twilio_caller.server.follow import Watch, this_turn


def record(*callee: str, status: str = "in-progress") -> dict:
    transcript = [{"speaker": "assistant", "text": "Hello", "confidence": None, "at": "t"}]
    transcript += [{"speaker": "callee", "text": text, "confidence": 0.9, "at": "t"} for text in callee]
    reply = {"text": callee[-1], "confidence": 0.9, "untrusted": True} if callee else None
    return {"call_id": "call_1", "status": status, "ended": status not in ("in-progress", "ringing"),
            "reply": reply, "no_reply_reason": None, "transcript": transcript}


def watch(tool: str, heard_before: int, **arguments) -> Watch:
    return Watch(Path("/nonexistent"), tool, {"call_id": "call_1", **arguments}, "call_1", heard_before, 0.0)


def test_a_reply_past_the_ones_the_tool_began_with_is_this_turns() -> None:
    followed = record("Hi", "Second reply")
    assert this_turn(followed, watch("say", 1)) == followed


def test_an_older_reply_is_not_this_turns_the_end_or_the_timeout_says_why() -> None:
    ended = this_turn(record("Hi", status="completed"), watch("say", 1))
    assert ended["reply"] is None and ended["no_reply_reason"] == "hung-up"
    failed = this_turn(record("Hi", status="failed"), watch("wait", 1))
    assert failed["reply"] is None and failed["no_reply_reason"] == "failed"
    live = this_turn(record("Hi"), watch("say", 1))
    assert live["reply"] is None and live["no_reply_reason"] == "timeout"
    assert live["transcript"] == record("Hi")["transcript"]


def test_a_wait_for_the_end_keeps_the_calls_last_reply() -> None:
    ended = record("Hi", status="completed")
    assert this_turn(ended, watch("wait", 1, until="end")) == ended
    assert watch("call", 0, interactive=False).until == "end"
    assert watch("call", 0, keep_open=True).until == "reply"


def test_what_is_followed(tmp_path: Path) -> None:
    assert Watch.start(tmp_path, "call", {"to": "x", "wait": False}) is None  # nothing waits
    assert Watch.start(tmp_path, "wait", {"call_id": "sched_1"}) is None  # the schedule book answers it
    assert Watch.start(tmp_path, "press", {"call_id": "call_1"}) is None
    said = Watch.start(tmp_path, "say", {"call_id": "call_1", "message": "Hi"})
    assert said is not None and said.call_id == "call_1" and said.heard_before == 0


def test_a_call_learns_its_call_id_from_its_first_progress_event() -> None:
    seen: list[dict] = []
    calling = Watch(Path("/nonexistent"), "call", {"to": "x"}, None, 0, 0.0)
    progress = calling.learning_call_id(seen.append)
    progress({"event": "dialing", "to": "x", "call_id": "call_9"})
    progress({"event": "answered"})
    assert calling.call_id == "call_9" and [e["event"] for e in seen] == ["dialing", "answered"]
    quiet = Watch(Path("/nonexistent"), "call", {"to": "x"}, None, 0, 0.0)
    quiet.learning_call_id(None)({"event": "dialing", "call_id": "call_8"})
    assert quiet.call_id == "call_8"
