"""What a call reports when it ends, as the agent reads it: a notify call that was never answered
reports its status (busy, no-answer, failed) as the reason, like an interactive one; a notify
call that was heard to the end has no reason at all; the duration is the one Twilio reported."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed"])
def test_an_unanswered_notify_call_says_why(live_server, status: str) -> None:
    live_server.script("Contact4", answer=status)
    result = live_server.tool("call", to="Contact4", message="Running late")
    assert (result["status"], result["ended"]) == (status, True)
    assert result["reply"] is None and result["no_reply_reason"] == status
    assert live_server.tool("call_status", call_id=result["call_id"])["no_reply_reason"] == status


def test_a_notify_call_heard_to_the_end_has_no_reason(live_server) -> None:
    result = live_server.tool("call", to="Contact5", message="Running late")
    assert result["status"] == "completed"
    assert result["no_reply_reason"] is None
    assert live_server.tool("call_status", call_id=result["call_id"])["no_reply_reason"] is None


def test_the_duration_twilio_reports_is_the_calls_duration(live_server) -> None:
    result = live_server.tool("call", to="Contact6", message="Running late")
    record = live_server.simulator.call(result["twilio_sid"])
    assert record.wait(10) and record.duration
    status = live_server.tool("call_status", call_id=result["call_id"])
    assert status["duration_seconds"] == record.duration
