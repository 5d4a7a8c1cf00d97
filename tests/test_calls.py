"""Calls end to end, through real loopback HTTP: tool → control API → dialer → twilio SDK →
simulator → signed webhook → conversation → session → the waiting tool call."""

from __future__ import annotations

import concurrent.futures

import pytest

from twilio_caller.errors import InvalidInputError, NotFoundError

OPENING = "Hi, this is Yamani, Robert's AI assistant."


def said(result: dict, speaker: str) -> list[str]:
    return [turn["text"] for turn in result["transcript"] if turn["speaker"] == speaker]


def test_notify_call_completes_and_says_the_message(live_server) -> None:
    result = live_server.tool("call", to="Contact1", message="I'll be late")
    assert result["status"] == "completed" and result["ended"] is True
    assert result["to"] == {"name": "Contact1", "number": "+13125550001"}
    assert said(result, "assistant") == [OPENING, "I'll be late", "Goodbye."]
    assert result["reply"] is None and result["no_reply_reason"] is None
    assert result["twilio_sid"].startswith("CA")
    record = live_server.simulator.call(result["twilio_sid"])
    assert [u.text for u in record.heard] == [OPENING, "I'll be late", "Goodbye."]


def test_interactive_call_returns_the_reply_the_moment_it_arrives(live_server) -> None:
    live_server.script("Contact2", replies=[{"say": "Sure, see you at eight", "confidence": 0.94}])
    result = live_server.tool("call", to="contact2", message="Dinner at eight?", interactive=True)
    assert result["reply"] == {"text": "Sure, see you at eight", "confidence": 0.94, "untrusted": True}
    assert result["no_reply_reason"] is None
    final = live_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    assert final["status"] == "completed"
    assert said(final, "assistant")[-1] == "Thanks, I'll pass that on. Goodbye."
    assert said(final, "callee") == ["Sure, see you at eight"]


@pytest.mark.parametrize(("answer", "status"), [("no-answer", "no-answer"), ("busy", "busy"),
                                                ("failed", "failed")])
def test_unanswered_calls_end_with_their_status(live_server, answer: str, status: str) -> None:
    live_server.script("Contact3", answer=answer)
    result = live_server.tool("call", to="Contact3", message="Hello", interactive=True)
    assert (result["status"], result["ended"]) == (status, True)
    assert result["reply"] is None and result["no_reply_reason"] == status
    assert result["transcript"] == []


def test_silence_gets_one_reprompt_then_the_answer(live_server) -> None:
    live_server.script("Contact4", replies=[{"silence": True}, {"say": "Oh sorry, yes"}])
    result = live_server.tool("call", to="Contact4", message="Are you free?", interactive=True)
    assert result["reply"]["text"] == "Oh sorry, yes"
    assert said(result, "assistant")[2:4] == ["Sorry, I didn't catch that.", "Are you free?"]


def test_silence_after_the_reprompt_means_no_reply(live_server) -> None:
    live_server.script("Contact5", replies=[{"silence": True}, {"silence": True}])
    result = live_server.tool("call", to="Contact5", message="Are you free?", interactive=True)
    assert result["reply"] is None and result["no_reply_reason"] == "no-speech"
    final = live_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    assert final["status"] == "completed"
    assert final["no_reply_reason"] == "no-speech"


def test_keep_open_two_turns_then_hangup(live_server) -> None:
    live_server.script("Contact6", replies=[{"say": "Hi! What's up?"}, {"say": "Yes, Friday works"},
                                            {"say": "Bye then"}])
    first = live_server.tool("call", to="Contact6", message="Quick question", keep_open=True)
    assert first["reply"]["text"] == "Hi! What's up?" and first["ended"] is False
    second = live_server.tool("say", call_id=first["call_id"], message="Does Friday work?")
    assert second["reply"]["text"] == "Yes, Friday works" and second["ended"] is False
    third = live_server.tool("say", call_id=first["call_id"], message="Great, talk soon")
    assert third["reply"]["text"] == "Bye then"
    ended = live_server.tool("hangup", call_id=first["call_id"], message="Goodbye!")
    assert ended["status"] == "completed" and ended["ended"] is True
    assert said(ended, "assistant")[-3:] == ["Does Friday work?", "Great, talk soon", "Goodbye!"]
    heard = [u.text for u in live_server.simulator.call(first["twilio_sid"]).heard]
    assert heard[-1] == "Goodbye!"
    with pytest.raises(InvalidInputError, match="has ended \\(status: completed\\)"):
        live_server.tool("say", call_id=first["call_id"], message="Still there?")


def test_say_without_expecting_a_reply(live_server) -> None:
    live_server.script("Contact7", replies=[{"say": "Go ahead"}, {"say": "Got it"}])
    first = live_server.tool("call", to="Contact7", message="I have news", keep_open=True)
    spoken = live_server.tool("say", call_id=first["call_id"], message="We won!", expect_reply=False)
    assert spoken["ended"] is False and said(spoken, "assistant")[-1] == "We won!"
    live_server.tool("hangup", call_id=first["call_id"])


def test_callee_hanging_up_ends_the_waiting_tool(live_server) -> None:
    live_server.script("Contact8", replies=[{"say": "Hello?"}, {"hangup": True}])
    first = live_server.tool("call", to="Contact8", message="It's me", keep_open=True)
    result = live_server.tool("say", call_id=first["call_id"], message="Can you hear me?",
                              timeout_seconds=20)
    assert result["ended"] is True and result["status"] == "completed"
    assert result["reply"] is None


def test_a_call_nobody_steers_is_closed_politely(live_server) -> None:
    live_server.script("Contact9", replies=[{"say": "Hello, who's this?"}])
    first = live_server.tool("call", to="Contact9", message="Hello", keep_open=True)
    final = live_server.tool("wait", call_id=first["call_id"], until="end", timeout_seconds=30)
    assert final["status"] == "completed"
    assert said(final, "assistant")[-1] == "Thanks, I'll pass that on. Goodbye."


def test_waiting_never_outlasts_the_timeout(live_server) -> None:
    live_server.script("Contact10", replies=[{"say": "Hi"}])
    first = live_server.tool("call", to="Contact10", message="Hello", keep_open=True)
    result = live_server.tool("wait", call_id=first["call_id"], timeout_seconds=1)
    assert result["ended"] is False and result["no_reply_reason"] == "timeout"
    live_server.tool("hangup", call_id=first["call_id"])


def test_wait_false_returns_once_placed(live_server) -> None:
    result = live_server.tool("call", to="Contact11", message="FYI", wait=False)
    assert result["ended"] is False and result["twilio_sid"].startswith("CA")
    final = live_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    assert final["status"] == "completed"


def test_twenty_concurrent_calls_are_kept_apart(live_server) -> None:
    names = [f"Contact{n}" for n in range(1, 21)]
    for name in names:
        live_server.script(name, replies=[{"say": f"This is {name} answering"}])

    def place(name: str) -> dict:
        return live_server.tool("call", to=name, message=f"Hello {name}", interactive=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(place, names))
    for name, result in zip(names, results, strict=True):
        assert result["to"]["name"] == name
        assert result["reply"]["text"] == f"This is {name} answering"
        assert said(result, "assistant")[1] == f"Hello {name}"
    assert len({r["call_id"] for r in results}) == 20


def test_duplicated_and_reordered_status_callbacks_change_nothing(live_server) -> None:
    live_server.simulator.chaos.duplicate_status_callbacks = True
    live_server.simulator.chaos.reorder_status_callbacks = True
    result = live_server.tool("call", to="Contact12", message="Hi")
    final = live_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    assert final["status"] == "completed" and final["ended"]
    status = live_server.tool("call_status", call_id=result["call_id"])
    assert status["status"] == "completed"


def test_unknown_call_ids_and_contacts(live_server) -> None:
    with pytest.raises(NotFoundError):
        live_server.tool("call_status", call_id="call_nope")
    with pytest.raises(NotFoundError, match="did you mean 'Contact1'"):
        live_server.tool("call", to="Contact1x", message="Hi")
    with pytest.raises(InvalidInputError, match="message"):
        live_server.tool("call", to="Contact1", message="   ")


def test_list_calls_shows_calls_with_transcripts(live_server) -> None:
    live_server.script("Contact13", replies=[{"say": "Thanks!"}])
    placed = live_server.tool("call", to="Contact13", message="Your parcel arrived", interactive=True)
    live_server.tool("wait", call_id=placed["call_id"], until="end", timeout_seconds=20)
    calls = live_server.tool("list_calls", contact="contact13")["calls"]
    assert [c["call_id"] for c in calls] == [placed["call_id"]]
    assert calls[0]["reply"]["text"] == "Thanks!" and calls[0]["status"] == "completed"
    assert live_server.tool("list_calls", status="busy")["calls"] == []


def test_twilio_api_errors_become_telephony_errors_and_free_the_cap(live_server) -> None:
    from twilio_caller.errors import TelephonyError

    live_server.simulator.chaos.fail_next_creates(3, status=500)
    with pytest.raises(TelephonyError, match="HTTP 500"):
        live_server.tool("call", to="Contact14", message="Hi")
    assert live_server.simulator.calls == []
    failed = live_server.tool("list_calls", contact="Contact14")["calls"]
    assert [c["status"] for c in failed] == ["failed"]
    placed = live_server.runtime.store.query("SELECT placed FROM calls")
    assert [row["placed"] for row in placed] == [0]
    assert live_server.tool("call", to="Contact14", message="Hi")["status"] == "completed"


def test_a_callee_who_opts_out_is_never_called_again(live_server) -> None:
    from twilio_caller.errors import RefusedError

    live_server.script("Contact15", replies=[{"say": "Please don't call me again"}])
    result = live_server.tool("call", to="Contact15", message="Hello", interactive=True)
    assert result["opted_out"] is True
    assert result["reply"]["text"] == "Please don't call me again"
    final = live_server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    assert said(final, "assistant")[-1] == "Understood. You won't get calls from me again. Goodbye."
    contact = [c for c in live_server.tool("list_contacts")["contacts"] if c["name"] == "Contact15"][0]
    assert contact["opted_out_at"] is not None
    with pytest.raises(RefusedError) as refused:
        live_server.tool("call", to="Contact15", message="Hello again")
    assert refused.value.rule == "opted_out"
    live_server.tool("update_contact", name="Contact15", opt_in=True)
    assert live_server.tool("call", to="Contact15", message="Sorry", dry_run=True)["allowed"] is True


@pytest.mark.parametrize("status", [429, 500])
def test_api_faults_on_create_are_retried(live_server, status: int) -> None:
    live_server.simulator.chaos.fail_next_creates(2, status=status)
    result = live_server.tool("call", to="Contact16", message="Hi")
    assert result["status"] == "completed"
    assert len(live_server.simulator.calls) == 1


def test_a_fault_after_twilio_created_the_call_never_dials_twice(live_server) -> None:
    live_server.simulator.chaos.fail_after_next_creates(1, status=500)
    result = live_server.tool("call", to="Contact17", message="Hi")
    assert result["status"] == "completed"
    assert [call.sid for call in live_server.simulator.calls] == [result["twilio_sid"]]


def test_purge_deletes_transcripts_of_ended_calls_only(live_server) -> None:
    live_server.script("Contact18", replies=[{"say": "Private words"}])
    ended = live_server.tool("call", to="Contact18", message="Hi", interactive=True)
    live_server.tool("wait", call_id=ended["call_id"], until="end", timeout_seconds=20)
    live = live_server.tool("call", to="Contact19", message="Hi", keep_open=True)
    assert live_server.tool("purge_calls", contact="Contact18")["purged"]["turns"] == 4
    assert live_server.tool("call_status", call_id=ended["call_id"])["transcript"] == []
    assert live_server.tool("purge_calls", older_than_days=0)["purged"]["turns"] == 0  # live: kept
    assert live_server.tool("call_status", call_id=live["call_id"])["transcript"] != []
    live_server.tool("hangup", call_id=live["call_id"])
    with pytest.raises(InvalidInputError, match="say what to purge"):
        live_server.tool("purge_calls")


def test_retention_purges_old_transcripts(runtime, clock) -> None:
    from twilio_caller.calls import CallWriter
    from twilio_caller.store.ports import NewCall

    runtime.contacts.add("Contact1", "312-555-0101")
    writer = CallWriter(runtime.store, clock)
    runtime.store.calls.insert(NewCall(id="call_old", token="t", to_number="+13125550101", mode="notify"), clock.now())
    writer.turn("call_old", "callee", "old words")
    writer.advance("call_old", "completed")
    clock.advance(89 * 86400)
    assert runtime.calls.purge_expired(90) == {"turns": 0, "events": 0}
    clock.advance(2 * 86400)
    assert runtime.calls.purge_expired(90)["turns"] == 1
