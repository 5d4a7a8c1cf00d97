"""Each replay defence of the webhook alone: every test here puts a request past all the
other layers, so it fails when that one layer is removed.

- the answer cache in memory: duplicates that arrive while the first answer is still being
  made (the store has no answer yet, the sequence is the current one) share that answer;
- the sequence in the URL: a gather for a sequence nobody was given is stale (no answer on
  record, not in memory): it records and takes nothing;
- the status callback's SequenceNumber: a retry with the same number but other content
  (a later Timestamp) is one event; without a SequenceNumber, identical content is one event;
- the CallSid check: a signed request for this call and token carrying another call's SID
  changes nothing.

The answers on record in the store (a replay after a restart, memory gone) and the turn
dedupe key (a gather retried after the server died while holding it) are the layers left
once the server's memory is gone: tests/test_crash.py
(test_replays_of_every_route_after_a_restart_get_the_answer_on_record) has each alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest

from conftest import LiveServer
from polling import eventually
from test_call_state import answers, events, state
from test_webhook import Hook, keep_open

DUPLICATES = 8


@pytest.fixture
def server(home: Path):
    """A server whose held answers wait 3 s for the agent: duplicates of a request can land
    while its answer is being made (inside the simulator's 15 s limit)."""
    with LiveServer(home, time_scale=50, hold=3, unsteered=60) as running:
        yield running


def callee_lines(hook: Hook) -> list[str]:
    return [t["text"] for t in hook.transcript() if t["speaker"] == "callee"]


def test_duplicates_of_an_answer_being_made_share_it(server) -> None:
    placed = keep_open(server, replies=[{"say": "Hi"}, {"say": "Yes"}])
    hook = Hook(server, placed, None)
    call_id = placed["call_id"]
    # the reply came: gather:1 is being answered (held for the agent), nothing on record yet
    assert "gather:1" not in answers(server, call_id)
    form = hook.form(SpeechResult="Hi", Confidence="0.9")
    with ThreadPoolExecutor(DUPLICATES) as pool:
        responses = list(pool.map(lambda _: hook.post(hook.path("gather") + "?n=1", form, timeout=60),
                                  range(DUPLICATES)))
    assert eventually(lambda: "gather:1" in answers(server, call_id))
    assert {r.status_code for r in responses} == {200}
    assert {r.text for r in responses} == {answers(server, call_id)["gather:1"]}
    assert callee_lines(hook) == ["Hi"]
    status = server.tool("call_status", call_id=call_id)  # the duplicates took nothing, ended nothing
    assert status["status"] == "in-progress" and not status["ended"]
    assert server.tool("say", call_id=call_id, message="Still there?")["reply"]["text"] == "Yes"
    server.tool("hangup", call_id=call_id)


def test_a_gather_for_a_sequence_nobody_was_given_records_and_takes_nothing(server) -> None:
    placed = keep_open(server, replies=[{"say": "Hi"}, {"say": "Yes"}])
    hook = Hook(server, placed, None)
    call_id = placed["call_id"]
    assert eventually(lambda: "gather:1" in answers(server, call_id))
    form = hook.form(SpeechResult="Words from nowhere", Confidence="0.9")
    stale = hook.post(hook.path("gather") + "?n=7", form, timeout=30)
    assert stale.status_code == 200
    assert "<Say" not in stale.text and "<Play" not in stale.text  # a steady hold, nothing said
    assert_holds_at_the_current_hold_url(server, hook, stale.text)
    assert "gather:7" not in answers(server, call_id)
    assert callee_lines(hook) == ["Hi"]
    spoken = server.tool("say", call_id=call_id, message="Still there?")  # nothing was taken
    assert spoken["reply"]["text"] == "Yes"
    assert [t["text"] for t in spoken["transcript"] if t["speaker"] == "callee"] == ["Hi", "Yes"]
    server.tool("hangup", call_id=call_id)


def test_a_hold_for_a_sequence_nobody_was_given_holds_the_call_steady(server) -> None:
    placed = keep_open(server, replies=[{"say": "Hi"}, {"say": "Yes"}])
    hook = Hook(server, placed, None)
    call_id = placed["call_id"]
    assert eventually(lambda: "hold:1" in answers(server, call_id))
    stale = hook.post(hook.path("hold") + "?n=99", timeout=30)
    assert stale.status_code == 200
    assert_holds_at_the_current_hold_url(server, hook, stale.text)
    assert "hold:99" not in answers(server, call_id)
    assert server.tool("say", call_id=call_id, message="Still there?")["reply"]["text"] == "Yes"
    server.tool("hangup", call_id=call_id)


def assert_holds_at_the_current_hold_url(server, hook: Hook, document: str) -> None:
    """A stale request's answer: valid TwiML that says nothing and ends by redirecting to a
    hold URL that was given (an empty or broken document would make Twilio end the call with
    an error); a listening pause inside it, if any, reports to that same URL."""
    root = ElementTree.fromstring(document)
    assert root.tag == "Response"
    assert not root.findall(".//Say") and not root.findall(".//Play")
    assert root[-1].tag == "Redirect"
    targets = [root[-1].text] + [gather.get("action") for gather in root.iter("Gather")]
    for target in map(urlsplit, targets):
        assert target.path == hook.path("hold")
        given = int(parse_qs(target.query)["n"][0])
        assert 1 <= given <= state(server, hook.placed["call_id"])["hold_seq"]


def test_a_status_callback_retried_with_its_sequence_number_is_one_event(server) -> None:
    placed = keep_open(server)
    hook = Hook(server, placed, None)
    call_id = placed["call_id"]
    before = events(server, call_id)
    for second in range(5):  # the same SequenceNumber, a different body each time
        callback = hook.form(CallStatus="in-progress", SequenceNumber="90",
                             Timestamp=f"Tue, 24 Nov 2026 15:00:0{second} +0000")
        assert hook.post(hook.path("status"), callback).status_code == 204
    assert events(server, call_id) == before + 1
    server.tool("hangup", call_id=call_id)


def test_an_identical_status_callback_without_a_sequence_number_is_one_event(server) -> None:
    placed = keep_open(server)
    hook = Hook(server, placed, None)
    call_id = placed["call_id"]
    before = events(server, call_id)
    callback = hook.form(CallStatus="in-progress", Timestamp="Tue, 24 Nov 2026 15:00:09 +0000")
    for _ in range(5):
        assert hook.post(hook.path("status"), callback).status_code == 204
    assert events(server, call_id) == before + 1
    other = hook.form(CallStatus="in-progress", Timestamp="Tue, 24 Nov 2026 15:00:10 +0000")
    assert hook.post(hook.path("status"), other).status_code == 204  # other content: recorded
    assert events(server, call_id) == before + 2
    server.tool("hangup", call_id=call_id)


def test_another_calls_sid_changes_nothing(server) -> None:
    placed = keep_open(server, replies=[{"say": "Hi"}, {"say": "Yes"}])
    hook = Hook(server, placed, None)
    call_id = placed["call_id"]
    assert eventually(lambda: "gather:1" in answers(server, call_id))
    before = events(server, call_id)
    foreign = {"CallSid": "CA" + "9" * 32, "CallStatus": "completed", "SequenceNumber": "91"}
    assert hook.post(hook.path("status"), foreign).status_code == 404
    gather = {"CallSid": "CA" + "9" * 32, "SpeechResult": "Not me", "Confidence": "0.9"}
    assert hook.post(hook.path("gather") + "?n=1", gather).status_code == 404
    assert events(server, call_id) == before
    assert callee_lines(hook) == ["Hi"]
    status = server.tool("call_status", call_id=call_id)
    assert status["status"] == "in-progress" and not status["ended"]
    server.tool("hangup", call_id=call_id)
