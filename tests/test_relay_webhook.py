"""The webhook's relay paths on whole calls: the `<Connect action>` (handoff) answered once and
replayed from the record, and who answered under synchronous detection (the voice request's
AnsweredBy, which a relay call's `<Connect>` answer must keep), on both engines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest
from twilio.request_validator import RequestValidator

from conftest import LiveServer
from test_engine_scenarios import ENGINES, OPENING, heard, said, serve
from twilio_caller.server.runfile import read_run_file
from twilio_caller.transport.twilio import relay


@pytest.fixture
def relay_server(home: Path) -> Iterator[LiveServer]:
    server = serve(home, "relay")
    yield server
    server.thread.stop()
    server.runtime.close()


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


def post_handoff(server: LiveServer, call_id: str, sid: str, session_id: str | None = None) -> httpx.Response:
    form = {"CallSid": sid, "CallStatus": "in-progress", "SessionStatus": "failed", "ErrorCode": "64105",
            **({"SessionId": session_id} if session_id else {})}
    return signed_post(server, call_id, "handoff", form)


def signed_post(server: LiveServer, call_id: str, route: str, form: dict[str, str],
                token: str | None = None) -> httpx.Response:
    """A request to the call's webhook `route` (with its token, or `token`), signed as Twilio signs it."""
    token = token or server.runtime.store.query("SELECT token FROM calls WHERE id = ?", (call_id,))[0][0]
    url = f"http://127.0.0.1:{read_run_file(server.runtime.home)['webhook_port']}/twilio/{call_id}/{token}/{route}"
    signature = RequestValidator(server.simulator.auth_token).compute_signature(url, form)
    return httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}, trust_env=False)


def test_a_socket_twilio_could_not_open_ends_with_an_apology_once_per_session(relay_server: LiveServer) -> None:
    """ErrorCode 64102 (Twilio could not open the socket): no new session, which would fail the
    same way — the apology, then the hang-up; another session's handoff gets its own answer."""
    relay_server.script("Contact9", replies=[{"say": "Go ahead"}])
    first = relay_server.tool("call", to="Contact9", message="I have news", keep_open=True)
    call_id, sid = first["call_id"], first["twilio_sid"]
    form = {"CallSid": sid, "CallStatus": "in-progress", "SessionStatus": "failed", "ErrorCode": "64102",
            "SessionId": "VX11"}
    answer = signed_post(relay_server, call_id, "handoff", form)
    assert [(verb.tag, verb.text) for verb in ET.fromstring(answer.text)] == [
        ("Say", relay.HANDOFF_APOLOGY), ("Hangup", None)]
    later = signed_post(relay_server, call_id, "handoff", {**form, "SessionStatus": "ended", "SessionId": "VX12"})
    assert [verb.tag for verb in ET.fromstring(later.text)] == ["Hangup"]  # not the apology again
    transcript = relay_server.tool("call_status", call_id=call_id)["transcript"]
    assert [t["text"] for t in transcript].count(relay.HANDOFF_APOLOGY) == 1


def test_only_the_handoff_takes_back_a_call_this_server_does_not_run(relay_server: LiveServer) -> None:
    """A server that does not run a live call (restarted, its reconciliation not there yet):
    Twilio's handoff of a dropped socket takes the call here; any other request for it is
    404 and takes nothing (those calls are taken back by reconciliation)."""
    relay_server.script("Contact9", replies=[{"say": "Go ahead"}])
    first = relay_server.tool("call", to="Contact9", message="I have news", keep_open=True)
    call_id, sid = first["call_id"], first["twilio_sid"]
    registry = relay_server.runner.dialer.registry
    registry.discard(call_id)  # as a server that has not taken the call back yet
    asked = signed_post(relay_server, call_id, "gather?n=1", {"CallSid": sid, "SpeechResult": "Hello?"})
    assert asked.status_code == 404 and registry.get(call_id) is None  # not taken by a gather request
    form = {"CallSid": sid, "CallStatus": "in-progress", "SessionStatus": "failed", "ErrorCode": "64105"}
    forged = signed_post(relay_server, call_id, "handoff", form, token="not-its-token")
    assert forged.status_code == 404 and registry.get(call_id) is None  # the token first, whatever is signed
    assert "?resume=" in reconnected_to(post_handoff(relay_server, call_id, sid, "VX07"))
    assert registry.get(call_id) is not None  # taken by the handoff
    relay_server.tool("hangup", call_id=call_id)


def lease(server: LiveServer, call_id: str) -> tuple[object, object]:
    row = server.runtime.store.query("SELECT owner, lease_until FROM call_state WHERE call_id = ?", (call_id,))[0]
    return row["owner"], row["lease_until"]


def test_a_handoff_for_a_call_that_ended_or_another_server_holds_takes_nothing(relay_server: LiveServer) -> None:
    """A server that does not run a call (restarted) takes it at its handoff only when it is
    live and no other running server holds its lease: for a call that ended, and for one whose
    lease a live server holds, the handoff is 404 — the lease stays where it was, the call is
    not taken here, nothing goes to the Calls API. Once that server lets go, the handoff takes it."""
    from twilio_caller.call_state import CallStates

    registry, states = relay_server.runner.dialer.registry, CallStates(relay_server.runtime.store,
                                                                       relay_server.runtime.clock)
    calls = []
    for name in ("Contact9", "Contact10"):
        relay_server.script(name, replies=[{"say": "Go ahead"}])
        calls.append(relay_server.tool("call", to=name, message="I have news", keep_open=True))
    ended, held = calls
    assert relay_server.tool("hangup", call_id=ended["call_id"])["status"] == "completed"
    another = f"{os.getpid()}:another-server"  # a server process that is running
    states.release([held["call_id"]], relay_server.runner.dialer.owner)
    assert states.claim(held["call_id"], another)
    for placed in calls:
        registry.discard(placed["call_id"])  # as a server that has not taken the calls back
    before = [(lease(relay_server, c["call_id"]), list(relay_server.simulator.call(c["twilio_sid"]).updates))
              for c in calls]
    for n, placed in enumerate(calls):
        assert post_handoff(relay_server, placed["call_id"], placed["twilio_sid"], f"VX2{n}").status_code == 404
        assert registry.get(placed["call_id"]) is None
    assert [(lease(relay_server, c["call_id"]), relay_server.simulator.call(c["twilio_sid"]).updates)
            for c in calls] == before
    assert len(relay_server.simulator.calls) == 2
    assert lease(relay_server, held["call_id"])[0] == another
    states.release([held["call_id"]], another)  # that server is gone: the handoff takes the call
    assert "?resume=" in reconnected_to(post_handoff(relay_server, held["call_id"], held["twilio_sid"], "VX22"))
    assert registry.get(held["call_id"]) is not None
    relay_server.tool("hangup", call_id=held["call_id"])


def dropped_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum("without our end" in record.getMessage() for record in caplog.records)


def reconnected_to(answer: httpx.Response) -> str:
    """The socket URL of a `<Connect><ConversationRelay>` answer (the call goes on over it)."""
    assert answer.status_code == 200
    document = ET.fromstring(answer.text)
    assert [verb.tag for verb in document] == ["Connect"]
    socket = document.find("Connect/ConversationRelay")
    assert socket is not None and document[0].get("action", "").endswith("/handoff")
    return socket.get("url", "")


def test_a_replayed_handoff_gets_the_answer_on_record_and_changes_nothing(
        relay_server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    relay_server.script("Contact9", replies=[{"say": "Go ahead"}])
    first = relay_server.tool("call", to="Contact9", message="I have news", keep_open=True)
    call_id, sid = first["call_id"], first["twilio_sid"]
    answer = post_handoff(relay_server, call_id, sid, "VX01")
    assert "?resume=" in reconnected_to(answer)  # the dropped socket: the line goes on, held for the agent
    assert dropped_warnings(caplog) == 1  # the drop is reported as it comes
    replay = post_handoff(relay_server, call_id, sid, "VX01")
    assert replay.status_code == 200 and replay.text == answer.text
    assert dropped_warnings(caplog) == 1  # the drop is reported once, not again for the replay
    events = relay_server.runtime.store.query(
        "SELECT COUNT(*) FROM events WHERE call_id = ? AND kind = 'relay-reconnect'", (call_id,))
    assert events[0][0] == 1  # one reconnect on record, not one per request
    ended = relay_server.tool("hangup", call_id=call_id)
    assert relay.HANDOFF_APOLOGY not in [t["text"] for t in ended["transcript"]]


def test_a_socket_that_keeps_dropping_ends_with_an_apology_in_a_say_voice(relay_server: LiveServer) -> None:
    relay_server.script("Contact9", replies=[{"say": "Go ahead"}])
    first = relay_server.tool("call", to="Contact9", message="I have news", keep_open=True,
                              voice="ElevenLabs.21m00Tcm4TlvDq8ikWAM")
    call_id, sid = first["call_id"], first["twilio_sid"]
    sockets = [reconnected_to(post_handoff(relay_server, call_id, sid, f"VX0{n}")) for n in range(3)]
    assert len(set(sockets)) == 3  # each new session resumes at a resume number of its own
    answer = post_handoff(relay_server, call_id, sid, "VX03")  # the fourth drop: no more reconnects
    say = ET.fromstring(answer.text).find("Say")
    assert say is not None and say.text == relay.HANDOFF_APOLOGY
    assert say.attrib.get("voice") == "Polly.Brian"  # voice.default: <Say> cannot speak an ElevenLabs voice
    transcript = relay_server.tool("call_status", call_id=call_id)["transcript"]
    assert [t["text"] for t in transcript].count(relay.HANDOFF_APOLOGY) == 1


def test_after_our_end_the_handoff_only_hangs_up(relay_server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    relay_server.script("Contact10", replies=[{"say": "Bye then"}])
    result = relay_server.tool("call", to="Contact10", message="Just checking", interactive=True)
    final = relay_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    record = relay_server.simulator.call(result["twilio_sid"])
    assert record.wait(10)
    assert relay.HANDOFF_APOLOGY not in record.heard_text
    assert relay.HANDOFF_APOLOGY not in said(final, "assistant")
    replay = post_handoff(relay_server, result["call_id"], result["twilio_sid"])
    assert [verb.tag for verb in ET.fromstring(replay.text)] == ["Hangup"]
    assert dropped_warnings(caplog) == 0
