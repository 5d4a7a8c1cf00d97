"""A call's life seen at the simulator: the turn is stored before Twilio gets the TwiML that
follows it; hang-up through the REST API when no webhook request is held (a ringing call,
a call in the middle of speaking)."""

from __future__ import annotations

import sqlite3

from conftest import CONTACTS
from polling import eventually


wait_for = eventually


def test_the_reply_is_stored_before_twilio_gets_the_answer(live_server) -> None:
    database = live_server.runtime.config.database_path
    stored_at_answer: list[list[tuple[str, str]]] = []

    def observe(record, request) -> None:  # on the simulator's loop, as the answer arrives
        if request.purpose == "action" and request.params.get("SpeechResult"):
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
                stored_at_answer.append(connection.execute(
                    "SELECT t.speaker, t.text FROM turns t JOIN calls c ON c.id = t.call_id"
                    " WHERE c.twilio_sid = ? ORDER BY t.id", (record.sid,)).fetchall())

    live_server.simulator.on_response = observe
    live_server.script("Contact7", replies=[{"say": "Sure, see you at eight"}])
    result = live_server.tool("call", to="Contact7", message="Dinner at eight?", interactive=True)
    live_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    assert len(stored_at_answer) == 1
    assert stored_at_answer[0][-2:] == [("callee", "Sure, see you at eight"),
                                        ("assistant", "Thanks, I'll pass that on. Goodbye.")]


def test_hanging_up_a_ringing_call_cancels_it_through_the_api(live_server) -> None:
    live_server.script("Contact8", ring_seconds=3000)  # a minute of real time at scale 50
    placed = live_server.tool("call", to="Contact8", message="Hello", wait=False)
    assert wait_for(lambda: live_server.simulator.call(placed["twilio_sid"]).status == "ringing")
    ended = live_server.tool("hangup", call_id=placed["call_id"])
    record = live_server.simulator.wait_for_call(placed["twilio_sid"], 10)
    assert (record.status, record.end_reason) == ("canceled", "api-cancel")
    assert ended["ended"] is True and ended["status"] == "canceled"
    assert record.heard == []


def test_hanging_up_while_the_assistant_speaks_ends_the_call_through_the_api(live_server) -> None:
    live_server.script("Contact9", replies=[{"say": "Hi"}])
    placed = live_server.tool("call", to="Contact9", message="Hello", keep_open=True)
    long_text = "This is a long story. " * 40  # about a minute of speech: a second of real time
    live_server.tool("say", call_id=placed["call_id"], message=long_text, expect_reply=False)
    ended = live_server.tool("hangup", call_id=placed["call_id"])  # nothing is held: the REST API
    record = live_server.simulator.wait_for_call(placed["twilio_sid"], 10)
    assert (record.status, record.end_reason) == ("completed", "api-hangup")
    assert ended["ended"] is True and ended["status"] == "completed"


def test_a_goodbye_while_the_assistant_speaks_is_sent_as_new_twiml(live_server) -> None:
    live_server.script("Contact10", replies=[{"say": "Hi"}])
    placed = live_server.tool("call", to="Contact10", message="Hello", keep_open=True)
    live_server.tool("say", call_id=placed["call_id"], message="This is a long story. " * 40,
                     expect_reply=False)
    ended = live_server.tool("hangup", call_id=placed["call_id"], message="Sorry, I must go. Bye!")
    record = live_server.simulator.wait_for_call(placed["twilio_sid"], 10)
    assert record.heard[-1].text == "Sorry, I must go. Bye!"
    assert record.status == "completed"
    assert [t["text"] for t in ended["transcript"]][-1] == "Sorry, I must go. Bye!"
    assert CONTACTS["Contact10"] == placed["to"]["number"]
