"""Why a call brought no reply, as the agent reads it: a notify call that was never answered
reports its status (busy, no-answer, failed) as the reason, like an interactive one; a notify
call that was heard to the end has no reason at all."""

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
