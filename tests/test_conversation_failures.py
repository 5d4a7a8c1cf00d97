"""A status callback the store refuses to record: Twilio gets a 500 (so it may retry) and
the agent's waiting tool gets the database error at once, not a timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import LiveServer
from test_call_state import answered
from test_webhook import Hook, keep_open
from twilio_caller.errors import ConfigError


@pytest.fixture
def server(home: Path):
    with LiveServer(home, time_scale=50, hold=0.3, unsteered=60) as running:
        yield running


def test_a_status_callback_the_store_refuses_reaches_the_waiting_agent(server) -> None:
    placed = keep_open(server, replies=[{"say": "Hi"}])
    call_id = placed["call_id"]
    answered(server, call_id, "hold:1")
    hook = Hook(server, placed, None)
    store = server.runner.dialer._rt.store  # noqa: SLF001 - the server's own connection
    store.query("PRAGMA query_only = ON")  # every write is refused, as on a read-only disk
    try:
        callback = hook.form(CallStatus="completed", SequenceNumber="99", CallDuration="4")
        assert hook.post(hook.path("status"), callback).status_code == 500
    finally:
        store.query("PRAGMA query_only = OFF")
    with pytest.raises(ConfigError) as failed:  # the disk is back; the call's failure stands
        server.tool("wait", call_id=call_id, until="end", timeout_seconds=10)
    assert failed.value.exit_code == 5 and str(store.path) in failed.value.message
