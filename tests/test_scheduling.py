"""Scheduled calls and retries: kept in the store, dialed by the server's scheduler through
the dialer's pipeline (so the safety rules at dial time decide), time from an injected clock.

The server runs in a thread with a ManualClock; a test moves the clock and then waits on
the scheduled call with `wait` (which wakes on the scheduler's news, no polling)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import CONTACTS, LiveServer

from twilio_caller import when
from twilio_caller.clock import ManualClock
from twilio_caller.errors import InvalidInputError, NotFoundError, RefusedError
from twilio_caller.invocation import Invocation

CHICAGO_9AM = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)  # Tuesday 09:00 in Chicago


def start(home: Path, clock: ManualClock, extra_config: str = "") -> LiveServer:
    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=1.5, clock=clock, extra_config=extra_config)
    server.thread.start()
    return server


@pytest.fixture
def manual() -> ManualClock:
    return ManualClock(CHICAGO_9AM)


@pytest.fixture
def server(home: Path, manual: ManualClock) -> Iterator[LiveServer]:
    running = start(home, manual)
    yield running
    running.thread.stop()
    running.runtime.close()


def dialed(server: LiveServer, name: str = "Contact1") -> int:
    return sum(1 for call in server.simulator.calls if call.to == CONTACTS[name])


def settle(server: LiveServer, scheduled_id: str, *, until: str = "end") -> dict[str, Any]:
    """Wait (bounded) for the scheduled call's next state that is not 'dialing'."""
    for _ in range(10):
        document = server.tool("wait", call_id=scheduled_id, until=until, timeout_seconds=30)
        if document["state"] != "dialing":
            return document
    raise AssertionError(f"{scheduled_id} stayed dialing")


# --- time phrases ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "local"), [
    ("in 20 minutes", "2026-12-01T09:20"),
    ("in 2 hours", "2026-12-01T11:00"),
    ("in an hour", "2026-12-01T10:00"),
    ("at 6pm", "2026-12-01T18:00"),
    ("at 8:30 am", "2026-12-02T08:30"),  # already past today: tomorrow
    ("tomorrow at 9am", "2026-12-02T09:00"),
    ("today at 14:30", "2026-12-01T14:30"),
    ("tonight", "2026-12-01T19:00"),
    ("tonight at 8", "2026-12-01T20:00"),
    ("2026-12-03T10:15", "2026-12-03T10:15"),
    ("2026-12-03T16:15:00+00:00", "2026-12-03T10:15"),
])
def test_times_are_read_in_the_owners_time_zone(text: str, local: str) -> None:
    due = when.due_at(text, CHICAGO_9AM, "America/Chicago")
    assert due.astimezone(when.ZoneInfo("America/Chicago")).strftime("%Y-%m-%dT%H:%M") == local


@pytest.mark.parametrize(("text", "problem"), [
    ("next blue moon", "not a time I understand"),
    ("today at 8am", "has already passed"),
    ("2026-11-30T10:00", "has already passed"),
    ("at 25:00", "not a time I understand"),
])
def test_a_bad_time_is_a_clear_error(text: str, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem) as error:
        when.due_at(text, CHICAGO_9AM, "America/Chicago")
    assert error.value.field == "at"


# --- scheduling --------------------------------------------------------------------------


def test_a_call_for_later_is_dialed_when_due_and_reports_through_wait(server: LiveServer,
                                                                      manual: ManualClock) -> None:
    scheduled = server.tool("call", to="Contact1", message="Your table is ready", at="in 20 minutes")
    assert scheduled["state"] == "scheduled" and scheduled["scheduled_id"].startswith("sched_")
    assert scheduled["at"] == "2026-12-01T15:20:00+00:00" and scheduled["last_call"] is None
    early = server.tool("wait", call_id=scheduled["scheduled_id"], timeout_seconds=1.5)
    assert early["state"] == "scheduled" and dialed(server) == 0  # nothing before the time
    listed = server.tool("list_scheduled")["scheduled"]
    assert [item["scheduled_id"] for item in listed] == [scheduled["scheduled_id"]]

    manual.advance(20 * 60)
    done = settle(server, scheduled["scheduled_id"])
    assert done["state"] == "done" and done["outcome"] == "completed" and done["attempts_made"] == 1
    assert done["last_call"]["status"] == "completed"
    assert "Your table is ready" in [t["text"] for t in done["last_call"]["transcript"]]
    assert dialed(server) == 1
    status = server.tool("call_status", call_id=scheduled["scheduled_id"])
    assert status["call_ids"] == done["call_ids"] and status["state"] == "done"
    assert server.tool("list_scheduled")["scheduled"] == []
    assert len(server.tool("list_scheduled", include_finished=True)["scheduled"]) == 1


def test_retries_follow_busy_lines_with_the_spacing(server: LiveServer, manual: ManualClock) -> None:
    server.script("Contact2", answer="busy")
    scheduled = server.tool("call", to="Contact2", message="Call me",
                            retry={"on": ["busy"], "attempts": 2, "spacing_minutes": 5})
    first = settle(server, scheduled["scheduled_id"], until="reply")
    assert first["state"] == "scheduled" and first["outcome"] == "busy" and first["attempts_made"] == 1
    assert first["at"] == "2026-12-01T15:05:00+00:00"
    assert dialed(server, "Contact2") == 1
    manual.advance(5 * 60)
    last = settle(server, scheduled["scheduled_id"])
    assert last["state"] == "done" and last["outcome"] == "busy" and last["attempts_made"] == 2
    assert len(last["call_ids"]) == 2 and dialed(server, "Contact2") == 2


def safety(**rules: Any) -> str:
    """A safety block replacing the test config's (the last `safety:` key wins)."""
    merged = {"calling_hours": "00:00-24:00", "callee_hours": None, "max_calls_per_day": 1000,
              "max_concurrent_calls": 100, "max_calls_per_contact_per_day": 100,
              "min_seconds_between_calls_to_contact": 0, **rules}
    lines = "".join(f"  {key}: {'null' if value is None else repr(value)}\n" for key, value in merged.items())
    return "safety:\n" + lines.replace("'", '"')


def test_a_retry_waits_out_the_min_gap(home: Path, manual: ManualClock) -> None:
    server = start(home, manual, safety(min_seconds_between_calls_to_contact=600))
    try:
        server.script("Contact2", answer="busy")
        scheduled = server.tool("call", to="Contact2", message="Call me",
                                retry={"on": ["busy"], "attempts": 2, "spacing_minutes": 5})
        first = settle(server, scheduled["scheduled_id"], until="reply")
        assert first["at"] == "2026-12-01T15:05:00+00:00" and first["outcome"] == "busy"
        manual.advance(5 * 60)  # the retry is due, but the min gap (10 minutes) is not over
        held = settle(server, scheduled["scheduled_id"], until="reply")
        assert held["state"] == "scheduled" and held["attempts_made"] == 1
        assert held["at"] == "2026-12-01T15:10:00+00:00" and "min_gap" in held["detail"]
        assert dialed(server, "Contact2") == 1
        manual.advance(5 * 60)
        last = settle(server, scheduled["scheduled_id"])
        assert last["state"] == "done" and last["attempts_made"] == 2 and dialed(server, "Contact2") == 2
    finally:
        server.thread.stop()
        server.runtime.close()


def test_safety_is_decided_again_at_dial_time(server: LiveServer, manual: ManualClock) -> None:
    scheduled = server.tool("call", to="Contact3", message="Hello", at="in 10 minutes")
    server.runtime.contacts.opt_out(CONTACTS["Contact3"])  # the callee said no since
    manual.advance(10 * 60)
    refused = settle(server, scheduled["scheduled_id"])
    assert refused["state"] == "refused" and refused["outcome"] == "opted_out"
    assert dialed(server, "Contact3") == 0  # nothing reached the Calls API


def test_a_call_found_too_late_is_missed_and_one_still_in_time_is_dialed(home: Path, manual: ManualClock) -> None:
    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=1.5, clock=manual)  # not started: down
    from twilio_caller.scheduled import Retry, ScheduleBook

    book = ScheduleBook(server.runtime.store, manual)
    arguments = {"to": "Contact4", "message": "Hi", "interactive": False, "keep_open": False}
    missed = book.add(arguments, "Contact4", CONTACTS["Contact4"], CHICAGO_9AM + timedelta(minutes=5),
                      Retry(), when_allowed=False)
    in_time = book.add({**arguments, "to": "Contact5"}, "Contact5", CONTACTS["Contact5"],
                       CHICAGO_9AM + timedelta(minutes=30), Retry(), when_allowed=False)
    manual.advance(50 * 60)  # back 45 and 20 minutes after the due times (limit: 30)
    from twilio_caller.runtime import Runtime
    from twilio_caller.server.runner import ServerRunner, ServerThread

    runner = ServerRunner(Runtime(home, environ={}, clock=manual), simulate=True, idle_exit=False, time_scale=50)
    with ServerThread(runner):
        gone = settle(server, missed.id)
        assert gone["state"] == "missed" and "45 minutes late" in gone["detail"]
        done = settle(server, in_time.id)
        assert done["state"] == "done"
        assert [call.to for call in runner.simulator.calls] == [CONTACTS["Contact5"]]
    server.runtime.close()


def test_when_allowed_turns_an_hours_refusal_into_a_call_then(home: Path, manual: ManualClock) -> None:
    manual.set(datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc))  # 20:00 in Chicago
    server = start(home, manual, safety(calling_hours="09:00-17:00"))
    try:
        with pytest.raises(RefusedError) as refused:
            server.tool("call", to="Contact1", message="Good morning")
        assert refused.value.rule == "calling_hours"
        assert server.tool("list_scheduled")["scheduled"] == []
        later = server.tool("call", to="Contact1", message="Good morning", when_allowed=True)
        assert later["state"] == "scheduled"
        assert datetime.fromisoformat(later["at"]) == datetime.fromisoformat(refused.value.next_allowed_at)
        assert later["at"] == "2026-12-02T15:00:00+00:00" and "calling_hours" in later["detail"]
        assert dialed(server) == 0
        manual.set(datetime(2026, 12, 2, 15, 0, tzinfo=timezone.utc))
        done = settle(server, later["scheduled_id"])
        assert done["state"] == "done" and done["outcome"] == "completed" and dialed(server) == 1
    finally:
        server.thread.stop()
        server.runtime.close()


def test_cancel_stops_a_scheduled_call(server: LiveServer, manual: ManualClock) -> None:
    scheduled = server.tool("call", to="Contact6", message="Hi", at="at 6pm")
    canceled = server.tool("cancel_scheduled", scheduled_id=scheduled["scheduled_id"])["canceled"]
    assert canceled["state"] == "canceled"
    manual.advance(10 * 3600)
    assert server.tool("wait", call_id=scheduled["scheduled_id"], timeout_seconds=2)["state"] == "canceled"
    assert dialed(server, "Contact6") == 0
    with pytest.raises(InvalidInputError, match="already canceled"):
        server.tool("cancel_scheduled", scheduled_id=scheduled["scheduled_id"])
    with pytest.raises(NotFoundError, match="list_scheduled"):
        server.tool("cancel_scheduled", scheduled_id="sched_nope")


@pytest.mark.parametrize(("arguments", "field"), [
    ({"at": "whenever"}, "at"),
    ({"at": "2020-01-01T09:00"}, "at"),
    ({"at": "in 5 minutes", "keep_open": True}, "keep_open"),
    ({"retry": {"attempts": 9}}, "retry.attempts"),
    ({"retry": {"on": ["hung-up"]}}, "retry.on.0"),
])
def test_a_bad_schedule_is_refused_and_nothing_is_stored(server: LiveServer, arguments: dict[str, Any],
                                                         field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        server.tool("call", to="Contact7", message="Hi", **arguments)
    assert error.value.field == field
    assert server.tool("list_scheduled", include_finished=True)["scheduled"] == []
    assert dialed(server, "Contact7") == 0


def test_an_unknown_contact_is_refused_when_scheduling(server: LiveServer) -> None:
    with pytest.raises((NotFoundError, RefusedError)):
        server.tool("call", to="Nobody", message="Hi", at="in 5 minutes")
    assert server.tool("list_scheduled", include_finished=True)["scheduled"] == []


def test_a_sentence_with_a_time_schedules_the_call(server: LiveServer, manual: ManualClock) -> None:
    from twilio_caller.sentences import run_command

    result = run_command(server.runtime, Invocation.from_environment(server.runtime.environ), text="call Contact8 tomorrow at 9am and tell him the car is ready")
    assert result["parsed"]["arguments"]["at"] == "2026-12-02T09:00"
    assert result["result"]["state"] == "scheduled" and result["result"]["at"] == "2026-12-02T15:00:00+00:00"
    manual.set(datetime(2026, 12, 2, 15, 0, tzinfo=timezone.utc))
    done = settle(server, result["result"]["scheduled_id"])
    assert done["state"] == "done" and dialed(server, "Contact8") == 1


def test_the_cli_schedules_lists_and_cancels(server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from twilio_caller.cli import main

    assert main(["call", "Contact1", "See you Friday", "--at", "2026-12-05T10:00", "--retry", "2",
                 "--simulate", "--json"]) == 0
    scheduled = json.loads(capsys.readouterr().out)
    assert scheduled["state"] == "scheduled" and scheduled["retry"]["attempts"] == 2
    assert scheduled["at"] == "2026-12-05T16:00:00+00:00"
    assert main(["scheduled"]) == 0
    assert scheduled["scheduled_id"] in capsys.readouterr().out
    assert main(["scheduled", "--cancel", scheduled["scheduled_id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["canceled"]["state"] == "canceled"
    assert main(["call", "Contact1", "Hi", "--at", "someday", "--simulate", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_input"
    assert dialed(server) == 0


def test_an_attempt_cut_short_by_a_restart_is_made_again_once(home: Path, manual: ManualClock) -> None:
    """Claimed (dialing) but no call recorded when the server died: the next server puts it
    back and dials it, once."""
    from twilio_caller.scheduled import Retry, ScheduleBook

    down = LiveServer(home, time_scale=50, hold=0.3, unsteered=1.5, clock=manual)  # not started
    book = ScheduleBook(down.runtime.store, manual)
    arguments = {"to": "Contact2", "message": "Hi", "interactive": False, "keep_open": False}
    cut = book.add(arguments, "Contact2", CONTACTS["Contact2"], CHICAGO_9AM, Retry(), when_allowed=False)
    assert book.claim(cut.id) and not book.claim(cut.id)  # claimed exactly once
    manual.advance(60)
    from twilio_caller.runtime import Runtime
    from twilio_caller.server.runner import ServerRunner, ServerThread

    runner = ServerRunner(Runtime(home, environ={}, clock=manual), simulate=True, idle_exit=False, time_scale=50)
    with ServerThread(runner):
        done = settle(down, cut.id)
        assert done["state"] == "done" and done["attempts_made"] == 1
        assert [call.to for call in runner.simulator.calls] == [CONTACTS["Contact2"]]
    down.runtime.close()
