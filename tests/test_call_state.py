"""Durable call state: replays of every webhook route get the answer on record and change
nothing (one at a time and 50 at once), a replayed hold cannot take the agent's next line,
status callbacks are deduplicated, and unknown statuses change nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import LiveServer
from test_webhook import Hook, keep_open
from polling import eventually

PARALLEL = 50


@pytest.fixture
def server(home: Path):
    """A simulate-mode server whose calls wait for the agent (no unsteered close mid-test)."""
    with LiveServer(home, time_scale=50, hold=0.3, unsteered=60) as running:
        yield running


def answers(server: LiveServer, call_id: str) -> dict[str, str]:
    rows = server.runtime.store.query(
        "SELECT request_key, twiml FROM call_answers WHERE call_id = ?", (call_id,))
    return {row["request_key"]: row["twiml"] for row in rows}


def answered(server: LiveServer, call_id: str, key: str) -> dict[str, str]:
    """The answers on record once `key` is among them (the held request is answered when
    the hold budget runs out)."""
    assert eventually(lambda: key in answers(server, call_id))
    return answers(server, call_id)


def state(server: LiveServer, call_id: str) -> dict:
    return dict(server.runtime.store.query("SELECT * FROM call_state WHERE call_id = ?", (call_id,))[0])


def events(server: LiveServer, call_id: str) -> int:
    return server.runtime.store.query("SELECT COUNT(*) FROM events WHERE call_id = ?", (call_id,))[0][0]


def replay(hook: Hook, path: str, form: dict[str, str], times: int) -> set[str]:
    with ThreadPoolExecutor(times) as pool:
        responses = list(pool.map(lambda _: hook.post(path, form), range(times)))
    assert {response.status_code for response in responses} == {200}
    return {response.text for response in responses}


def test_replays_of_every_route_get_the_answer_on_record(server) -> None:
    placed = keep_open(server, replies=[{"say": "Hi"}, {"say": "Fine, thanks"}])
    hook = Hook(server, placed, None)
    given = answered(server, placed["call_id"], "gather:1")
    transcript = hook.transcript()
    voice_form = hook.form(AnsweredBy="human")
    gather_form = hook.form(SpeechResult="Hi", Confidence="0.9")
    for _ in range(3):  # one after the other
        assert hook.post(hook.path("voice"), voice_form).text == given["voice"]
        assert hook.post(hook.path("gather") + "?n=1", gather_form).text == given["gather:1"]
    assert replay(hook, hook.path("voice"), voice_form, PARALLEL) == {given["voice"]}
    assert replay(hook, hook.path("gather") + "?n=1", gather_form, PARALLEL) == {given["gather:1"]}
    held = answered(server, placed["call_id"], "hold:1")
    assert replay(hook, hook.path("hold") + "?n=1", hook.form(), PARALLEL) == {held["hold:1"]}
    assert hook.transcript() == transcript  # nothing recorded twice
    spoken = server.tool("say", call_id=placed["call_id"], message="How are you?")
    assert spoken["reply"]["text"] == "Fine, thanks"
    assert [t["text"] for t in spoken["transcript"]].count("How are you?") == 1
    server.tool("hangup", call_id=placed["call_id"])


def test_a_replayed_hold_cannot_take_the_agents_next_line(server) -> None:
    placed = keep_open(server, replies=[{"say": "Hi"}, {"say": "Got it"}])
    hook = Hook(server, placed, None)
    call_id = placed["call_id"]
    answered(server, call_id, "hold:1")
    with ThreadPoolExecutor(PARALLEL + 1) as pool:
        spoken = pool.submit(server.tool, "say", call_id=call_id, message="Dinner at eight?")
        replays = list(pool.map(lambda _: hook.post(hook.path("hold") + "?n=1"), range(PARALLEL)))
        result = spoken.result(30)
    assert all("Dinner at eight" not in response.text for response in replays)
    assert result["reply"]["text"] == "Got it"
    assert "Dinner at eight?" in server.simulator.call(placed["twilio_sid"]).heard_text
    assert state(server, call_id)["pending_actions"] == "[]"
    server.tool("hangup", call_id=call_id)


def test_a_hold_url_nobody_was_given_delivers_nothing(server) -> None:
    placed = keep_open(server, replies=[{"say": "Hi"}, {"say": "Yes"}])
    hook = Hook(server, placed, None)
    ahead = state(server, placed["call_id"])["hold_seq"] + 100
    answer = hook.post(hook.path("hold") + f"?n={ahead}")
    assert answer.status_code == 200 and "<Say" not in answer.text
    assert f"hold:{ahead}" not in answers(server, placed["call_id"])
    assert server.tool("say", call_id=placed["call_id"], message="Still there?")["reply"]["text"] == "Yes"
    server.tool("hangup", call_id=placed["call_id"])


def test_status_callbacks_are_deduplicated_and_unknown_statuses_refused(server) -> None:
    placed = keep_open(server)
    hook = Hook(server, placed, None)
    call_id = placed["call_id"]
    before = events(server, call_id)
    callback = hook.form(CallStatus="in-progress", Timestamp="Tue, 24 Nov 2026 15:00:01 +0000")
    for _ in range(20):
        assert hook.post(hook.path("status"), callback).status_code == 204
    assert events(server, call_id) == before + 1
    replay_seq = hook.form(CallStatus="ringing", SequenceNumber="1")
    for _ in range(5):
        assert hook.post(hook.path("status"), replay_seq).status_code == 204
    after = events(server, call_id)
    assert after <= before + 2
    for unknown in ("answered", "COMPLETED", "in_progress", ""):
        assert hook.post(hook.path("status"), hook.form(CallStatus=unknown)).status_code == 400
    assert events(server, call_id) == after
    status = server.tool("call_status", call_id=call_id)
    assert status["status"] == "in-progress" and not status["ended"]
    server.tool("hangup", call_id=call_id)



def test_a_write_the_store_refuses_ends_the_call_and_reaches_the_agent(server) -> None:
    """Honest failure: the agent gets the database error (exit 5, the file), not a timeout;
    the callee hears a goodbye and the call ends; once the disk is back, reconciliation
    closes the record."""
    from twilio_caller.conversation import FAILURE_GOODBYE
    from twilio_caller.errors import ConfigError

    placed = keep_open(server, replies=[{"say": "Hi"}, {"say": "Never heard"}])
    answered(server, placed["call_id"], "hold:1")
    hook = Hook(server, placed, None)
    store = server.runner.dialer._rt.store  # noqa: SLF001 - the server's own connection
    store.query("PRAGMA query_only = ON")  # every write is refused, as on a read-only disk
    try:
        with pytest.raises(ConfigError) as failed:
            server.tool("say", call_id=placed["call_id"], message="Are you there?")
        assert failed.value.exit_code == 5 and str(store.path) in failed.value.message
        record = server.simulator.call(placed["twilio_sid"])
        assert record.wait(10) and record.status == "completed"
        assert record.heard_text[-1] == FAILURE_GOODBYE
        assert "Are you there?" not in record.heard_text
        callback = hook.form(CallStatus="completed", SequenceNumber="99")
        assert hook.post(hook.path("status"), callback).status_code == 500  # not recorded: said so
    finally:
        store.query("PRAGMA query_only = OFF")
    changed = server.tool("reconcile_calls")["changed"]
    assert [(c["call_id"], c["status"]) for c in changed] == [(placed["call_id"], "completed")]
    final = server.tool("call_status", call_id=placed["call_id"])
    assert final["ended"] and "Are you there?" not in [t["text"] for t in final["transcript"]]
