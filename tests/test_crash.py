"""A live call survives the server: SIGKILLed servers in their own processes, a restarted
one that continues every live call where it was, ghost calls that are closed, two servers
that never share a home."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import LiveServer
from polling import eventually
from crashkit import (Callee, Person, background, callee_lines, final_status_callback, gather_post,
                      hold_starts_until, kill, live_home, said_lines, server, stop_background,
                      twilio_served, wait_for_turn)
from twilio_caller.errors import ServerUnavailableError
from twilio_caller.invocation import Invocation
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime
from twilio_caller.server.client import ensure_server, find_server
from twilio_caller.server.runfile import run_file
from twilio_caller.simulator import InteractiveCallee, Simulator

GHOSTS = 3


@pytest.fixture
def twilio():
    yield from twilio_served(10.0)


def answering(simulator: Simulator, *replies: str, ring_seconds: float = 0.2) -> None:
    """Contact1's callee gives `replies` in turn, each as soon as asked."""
    responder = Callee(*replies)
    responder.release.set()
    simulator.set_callee("+13125550101", InteractiveCallee(responder, ring_seconds=ring_seconds))


def test_a_restarted_server_continues_the_gather_sequence(home: Path, twilio) -> None:
    """The reported bug: after a restart the Gather counter began at 1 again, and the next
    reply was dropped as a duplicate of the first while the agent was told it."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    responder = Callee("Hi", "Second reply", "Third reply", "Fourth reply")
    simulator.set_callee("+13125550101", InteractiveCallee(responder, ring_seconds=0.2))
    first = ensure_server(home, simulate=False)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    callee = simulator.call(placed["twilio_sid"])
    assert responder.answering.wait(10)
    responder.release.set()
    assert invoke("wait", {"call_id": placed["call_id"]}, runtime)["reply"]["text"] == "Hi"
    second = invoke("say", {"call_id": placed["call_id"], "message": "And then?"}, runtime)
    assert second["reply"]["text"] == "Second reply"
    restarted = crash(home, simulator, first.info["pid"], ringing=False, sid=placed["twilio_sid"])
    try:
        third = invoke("say", {"call_id": placed["call_id"], "message": "Anything else?"}, runtime)
        assert third["reply"]["text"] == "Third reply"
        assert callee_lines(third) == ["Hi", "Second reply", "Third reply"]
        status = invoke("call_status", {"call_id": placed["call_id"]}, runtime)
        assert status["reply"]["text"] == "Third reply"
        ended = invoke("hangup", {"call_id": placed["call_id"]}, runtime)
        assert ended["status"] == "completed"
        assert callee.wait(10) and callee.status == "completed"
        said = [t["text"] for t in ended["transcript"] if t["speaker"] == "assistant"]
        assert said.count("And then?") == 1 and said.count("Anything else?") == 1
    finally:
        restarted.stop()


def test_ghost_calls_are_closed_and_block_nothing(home: Path) -> None:
    """Simulate mode: the simulator stops with its server, so the next Twilio does not know
    the call (20404). Three stopped servers used to leave three calls live forever and the
    next call refused (`concurrency`)."""
    site = LiveServer(home, time_scale=50, hold=0.3, unsteered=60)
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("max_concurrent_calls: 1000", f"max_concurrent_calls: {GHOSTS}"))
    ghosts = []
    for _ in range(GHOSTS):
        restart(site)
        site.script("Contact1", replies=[{"say": "Hi"}])
        ghosts.append(site.tool("call", to="Contact1", message="Hello", keep_open=True)["call_id"])
        site.thread.stop()  # the call stays live in the store; its Twilio is gone
    restart(site)
    try:
        changed = site.tool("reconcile_calls")["changed"]  # this start-up's report: the last ghost
        assert [(change["call_id"], change["reason"]) for change in changed] == [(ghosts[-1], "unknown")]
        assert site.tool("reconcile_calls")["changed"] == []  # nothing left to change
        site.script("Contact1", replies=[{"say": "Hello to you"}])
        fresh = site.tool("call", to="Contact1", message="Hello again", keep_open=True)
        assert fresh["reply"]["text"] == "Hello to you"
        for call_id in ghosts:
            record = site.tool("call_status", call_id=call_id)
            assert record["ended"] is True and record["status"] == "completed"
            assert record["end_reason"] == "unknown"
        assert site.tool("safety_rules")["today"]["live_calls"] == 1
        live = [c["call_id"] for c in site.tool("list_calls")["calls"] if not c["ended"]]
        assert live == [fresh["call_id"]]
        site.tool("hangup", call_id=fresh["call_id"])
    finally:
        site.thread.stop()
        site.runtime.close()


def restart(site: LiveServer) -> None:
    """A new server (and with it a new simulated Twilio) on the same home."""
    from twilio_caller.server.runner import ServerRunner, ServerThread

    site.runner = ServerRunner(Runtime(site.runtime.home, environ={}), simulate=True, idle_exit=False,
                               time_scale=50)
    site.thread = ServerThread(site.runner).start()


def test_a_server_holding_the_home_is_never_doubled(home: Path, twilio) -> None:
    """With the run file deleted under a live server, a client does not start a second one
    that would take the first one's calls: it says so (exit 7)."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    answering(simulator, "Hi", "Yes")
    first = ensure_server(home, simulate=False)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True}, runtime)
    run_file(home).unlink()
    with pytest.raises(ServerUnavailableError) as refused:
        ensure_server(home, simulate=False)
    assert refused.value.exit_code == 7 and str(first.info["pid"]) in refused.value.message
    with pytest.raises(ServerUnavailableError):
        server(home)  # a server started directly does not take the home either
    assert first.health() is not None
    reply = first.invoke("say", {"call_id": placed["call_id"], "message": "Still there?", "expect_reply": True,
                                 "timeout_seconds": 20}, wait_seconds=20)
    assert reply["reply"]["text"] == "Yes"
    assert callee_lines(reply) == ["Hi", "Yes"]
    first.invoke("hangup", {"call_id": placed["call_id"]}, wait_seconds=20)
    kill(first.info["pid"])


def test_a_call_past_its_maximum_duration_is_ended_whatever_twilio_says(home: Path, twilio) -> None:
    """Nothing stays in progress past ring time + max duration + grace: the server that finds
    such a call hangs it up at Twilio and closes the record (reason max-duration)."""
    from datetime import timedelta

    from twilio_caller.clock import ManualClock, SystemClock
    from twilio_caller.server.runner import ServerRunner, ServerThread

    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    responder = Callee("Hi")
    simulator.set_callee("+13125550101", InteractiveCallee(responder, ring_seconds=0.2))
    first = server(home)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    assert responder.answering.wait(10)  # live, the callee thinking, no request open
    first.stop()
    later = ManualClock(SystemClock().now() + timedelta(hours=3))
    second = ServerThread(ServerRunner(Runtime(home, environ={}, clock=later), simulate=False,
                                       idle_exit=False)).start()
    responder.release.set()
    try:
        record = simulator.call(placed["twilio_sid"])
        assert record.wait(10) and record.status == "completed"
        final = invoke("call_status", {"call_id": placed["call_id"]}, runtime)
        assert final["ended"] and final["status"] == "completed" and final["end_reason"] == "max-duration"
    finally:
        second.stop()


def test_a_call_killed_while_ringing_is_answered_by_the_next_server(home: Path, twilio) -> None:
    """Kill point "while ringing": the next server points the ringing call at itself; the
    opening is said once, the reply recorded once, the call ends completed."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    answering(simulator, "Hi there", ring_seconds=25)  # 2.5 s here, under the ring timeout
    first = ensure_server(home, simulate=False)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "interactive": True, "wait": False}, runtime)
    record = simulator.call(placed["twilio_sid"])
    assert record.status in ("queued", "ringing")
    kill(first.info["pid"])
    second = server(home)
    try:
        final = invoke("wait", {"call_id": placed["call_id"], "until": "end", "timeout_seconds": 30}, runtime)
        assert final["status"] == "completed" and record.status == "completed"
        texts = [t["text"] for t in final["transcript"]]
        assert texts.count("Hi, this is Yamani, Robert's AI assistant.") == 1
        assert callee_lines(final) == ["Hi there"]
        assert texts[-1] == "Thanks, I'll pass that on. Goodbye."
    finally:
        second.stop()


def crash(home: Path, simulator: Simulator, pid: int, *, ringing: bool, sid: str):
    """SIGKILL the server and start the next one. A ringing call has no request open; an
    answered one is in its hold loop, so the kill lands between two hold requests (just
    before the next is sent: the next server's redirect takes the call before it goes)."""
    if ringing:
        assert simulator.call(sid).status in ("queued", "ringing")
        kill(pid)
        return server(home)
    restarted: list = []
    done = threading.Event()

    def die() -> None:
        kill(pid)
        restarted.append(server(home))
        done.set()

    simulator.chaos.on_next_webhook(lambda url, params: "/hold?n=" in url, die, in_flight=False)
    assert done.wait(30)
    return restarted[0]


KILL_POINTS = ["while-ringing", "after-greeting", "between-reply-and-say", "before-hangup"]


@pytest.mark.parametrize("kill_at", range(len(KILL_POINTS)), ids=KILL_POINTS)
def test_crash_matrix_a_keep_open_call_loses_and_doubles_no_turn(home: Path, twilio, kill_at: int) -> None:
    """One scripted keep-open call; the server process is SIGKILLed before step `kill_at`
    and restarted: every turn once, in order, the call ends completed, the tools agree with
    the store."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    answering(simulator, "Hi", "Second reply", "Third reply", ring_seconds=25)  # 2.5 s here
    first = ensure_server(home, simulate=False)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    call_id = placed["call_id"]
    steps = [
        lambda: invoke("wait", {"call_id": call_id, "timeout_seconds": 30}, runtime),
        lambda: invoke("say", {"call_id": call_id, "message": "And then?"}, runtime),
        lambda: invoke("say", {"call_id": call_id, "message": "Anything else?"}, runtime),
        lambda: invoke("hangup", {"call_id": call_id}, runtime),
    ]
    results = []
    restarted = None
    try:
        for index, step in enumerate(steps):
            if index == kill_at:
                restarted = crash(home, simulator, first.info["pid"], ringing=index == 0,
                                  sid=placed["twilio_sid"])
            results.append(step())
        assert [r["reply"]["text"] for r in results[:3]] == ["Hi", "Second reply", "Third reply"]
        ended = results[3]
        assert ended["status"] == "completed"
        record = simulator.call(placed["twilio_sid"])
        assert record.wait(10) and record.status == "completed"
        assert callee_lines(ended) == ["Hi", "Second reply", "Third reply"]
        said = [t["text"] for t in ended["transcript"] if t["speaker"] == "assistant"]
        assert said.count("And then?") == 1 and said.count("Anything else?") == 1
        assert said.index("And then?") < said.index("Anything else?")
        stored = invoke("call_status", {"call_id": call_id}, runtime)
        assert stored["ended"] and stored["status"] == "completed"
        assert stored["transcript"] == ended["transcript"]
    finally:
        if restarted is not None:
            restarted.stop()


def test_replays_of_every_route_after_a_restart_get_the_answer_on_record(home: Path, twilio) -> None:
    """After a SIGKILL and a restart, 50 parallel replays of each webhook route get the
    answer on record (from the store, not the dead server's memory) and change nothing."""
    from types import SimpleNamespace

    from test_call_state import PARALLEL, answered, replay
    from test_webhook import Hook

    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    answering(simulator, "Hi", "Fine, thanks")
    first = ensure_server(home, simulate=False)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    assert invoke("wait", {"call_id": placed["call_id"], "timeout_seconds": 30}, runtime)["reply"]["text"] == "Hi"
    restarted = crash(home, simulator, first.info["pid"], ringing=False, sid=placed["twilio_sid"])
    try:
        site = SimpleNamespace(runtime=runtime, simulator=simulator,
                               tool=lambda name, **args: invoke(name, args, runtime))
        hook = Hook(site, placed, None)
        given = answered(site, placed["call_id"], "hold:2")  # the next server's first hold
        transcript = hook.transcript()
        # the kill came between gather:1's answer and its hold:1 request (stale now, tested in
        # test_call_state); the next server's take-back gave hold:2
        for key in ("voice", "gather:1", "hold:2"):
            route, _, number = key.partition(":")
            path = hook.path(route) + (f"?n={number}" if number else "")
            form = hook.form(SpeechResult="Hi", Confidence="0.9") if route == "gather" else hook.form()
            answers_given = replay(hook, path, form, PARALLEL)
            assert len(answers_given) == 1, key
            assert key not in given or answers_given == {given[key]}, key
        assert hook.transcript() == transcript  # nothing recorded twice
        spoken = invoke("say", {"call_id": placed["call_id"], "message": "How are you?"}, runtime)
        assert spoken["reply"]["text"] == "Fine, thanks"
        assert callee_lines(spoken) == ["Hi", "Fine, thanks"]
        assert [t["text"] for t in spoken["transcript"]].count("How are you?") == 1
        assert invoke("hangup", {"call_id": placed["call_id"]}, runtime)["status"] == "completed"
    finally:
        restarted.stop()


QUESTIONS = {"Hello": "Hi", "And then?": "Second reply", "Anything else?": "Third reply"}


def keep_open_call(home: Path, twilio, person: Person):
    """A keep-open call through a background server, its first reply heard."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    simulator.set_callee("+13125550101", InteractiveCallee(person, ring_seconds=2))
    first = background(home)
    placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
    assert invoke("wait", {"call_id": placed["call_id"], "timeout_seconds": 30}, runtime)["reply"]["text"] == "Hi"
    return runtime, first, placed


def test_crash_matrix_a_say_held_when_its_server_dies_follows_the_call(home: Path, twilio) -> None:
    """Kill point "while a say is held": the agent's `say` waits for the callee, who is
    thinking (the call in its Gather). The server is SIGKILLed; the waiting `say` starts the
    next server, which takes the call back and asks the cut question again; `say` returns
    that reply (not exit 7), and the call goes on to its end."""
    simulator, _ = twilio
    person = Person(QUESTIONS, think_at="And then?")
    runtime, first, placed = keep_open_call(home, twilio, person)
    call_id = placed["call_id"]
    try:
        with ThreadPoolExecutor(1) as pool:
            saying = pool.submit(invoke, "say", {"call_id": call_id, "message": "And then?"}, runtime)
            assert person.thinking.wait(10)
            kill(first.info["pid"])
            second = saying.result(timeout=90)
        person.release.set()
        assert second["reply"]["text"] == "Second reply"
        third = invoke("say", {"call_id": call_id, "message": "Anything else?"}, runtime)
        assert third["reply"]["text"] == "Third reply"
        ended = invoke("hangup", {"call_id": call_id}, runtime)
        assert ended["status"] == "completed"
        record = simulator.call(placed["twilio_sid"])
        assert record.wait(10) and record.status == "completed"
        assert callee_lines(ended) == ["Hi", "Second reply", "Third reply"]
        said = said_lines(ended)  # the cut question asked again, once, after the reprompt
        asked = said.index("And then?")
        assert said[asked:asked + 4] == ["And then?", "Sorry, I didn't catch that.", "And then?", "Anything else?"]
        assert said.count("And then?") == 2 and said.count("Anything else?") == 1
        stored = invoke("call_status", {"call_id": call_id}, runtime)
        assert stored["ended"] and stored["transcript"] == ended["transcript"]
    finally:
        person.release.set()
        stop_background(home)


@pytest.mark.parametrize("in_flight", [True, False], ids=["received", "not-received"])
def test_crash_matrix_a_reply_being_posted_when_the_server_dies(home: Path, twilio, in_flight: bool) -> None:
    """Kill point "while a reply is being posted": SIGKILL with Twilio's Gather request on
    its way — after the server wrote the reply (received) or before it reached it. Like
    Twilio, the simulator does not retry the failed request: the call ends with an
    application error. The waiting `say` follows the call to the next server (started once
    Twilio has ended it) and returns what the store knows: the reply when it was received,
    else the end; reconciliation closes the record; nothing doubled."""
    simulator, _ = twilio
    person = Person(QUESTIONS)
    runtime, first, placed = keep_open_call(home, twilio, person)
    call_id = placed["call_id"]
    record = simulator.call(placed["twilio_sid"])

    def die() -> None:
        if in_flight:
            assert wait_for_turn(runtime, call_id, "Second reply")
        hold_starts_until(home, record.finished)
        kill(first.info["pid"])

    simulator.chaos.on_next_webhook(gather_post(2), die, in_flight=in_flight)
    try:
        second = invoke("say", {"call_id": call_id, "message": "And then?"}, runtime)
        assert record.wait(10) and record.status == "completed"
        assert 11200 in record.error_codes and "an application error has occurred" in record.heard_text[-1]
        closed = invoke("reconcile_calls", {}, runtime)["changed"]
        assert closed == [{"call_id": call_id, "action": "closed", "status": "completed", "reason": "completed"}]
        stored = invoke("call_status", {"call_id": call_id}, runtime)
        assert stored["ended"] and stored["status"] == "completed" and stored["end_reason"] == "completed"
        assert said_lines(stored).count("And then?") == 1
        assert "Second reply" in record.said_text  # the callee said it; only a received one is on record
        if in_flight:
            assert second["reply"]["text"] == "Second reply"
            assert callee_lines(stored) == ["Hi", "Second reply"]
        else:
            assert second["reply"] is None and second["no_reply_reason"] == "hung-up" and second["ended"]
            assert callee_lines(stored) == ["Hi"]
        assert stored["transcript"][:len(second["transcript"])] == second["transcript"]
    finally:
        stop_background(home)


def test_crash_matrix_a_hangup_whose_server_dies_returns_the_end(home: Path, twilio) -> None:
    """Kill point "during the hangup request": the call ends at Twilio, and the server dies
    before the final status callback reaches it (not retried). The waiting `hangup`
    follows the call: the next server closes it from Twilio's word, and `hangup` returns
    the ended call, as the store has it."""
    simulator, _ = twilio
    person = Person(QUESTIONS)
    runtime, first, placed = keep_open_call(home, twilio, person)
    call_id = placed["call_id"]
    simulator.chaos.on_next_webhook(final_status_callback, lambda: kill(first.info["pid"]), in_flight=False)
    try:
        ended = invoke("hangup", {"call_id": call_id}, runtime)
        record = simulator.call(placed["twilio_sid"])
        assert record.wait(10) and record.status == "completed"
        assert ended["ended"] and ended["status"] == "completed" and ended["end_reason"] == "completed"
        assert callee_lines(ended) == ["Hi"]
        stored = invoke("call_status", {"call_id": call_id}, runtime)
        assert stored == ended
        closed = invoke("reconcile_calls", {}, runtime)["changed"]  # the next server's start-up report
        assert closed == [{"call_id": call_id, "action": "closed", "status": "completed", "reason": "completed"}]
    finally:
        stop_background(home)


def test_two_servers_started_on_one_home_at_once_one_owns_it(home: Path, twilio) -> None:
    """Two `serve` processes started together on one home (no client's start lock between
    them): exactly one takes the home's lease and serves; the other exits with exit 7 and
    says which server holds the home. Calls then go to the one server, each reply once."""
    import subprocess
    import sys

    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    person = Person(QUESTIONS)
    simulator.set_callee("+13125550101", InteractiveCallee(person, ring_seconds=2))
    (home / "logs").mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "TWILIO_CALLER_HOME": str(home)}
    command = [sys.executable, "-m", "twilio_caller", "serve", "--background"]
    starts = [subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, start_new_session=True) for _ in range(2)]
    try:
        assert eventually(lambda: any(p.poll() is not None for p in starts), timeout=60)
        refused = next(p for p in starts if p.poll() is not None)
        serving = next(p for p in starts if p is not refused)
        assert refused.returncode == 7
        assert f"pid {serving.pid}" in refused.communicate(timeout=10)[0].decode()
        owner = find_server(home)
        assert owner is not None and owner.info["pid"] == serving.pid
        placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True}, runtime)
        assert placed["reply"]["text"] == "Hi"
        assert find_server(home).info["pid"] == serving.pid  # the client found it; no other started
        said = invoke("say", {"call_id": placed["call_id"], "message": "And then?"}, runtime)
        assert said["reply"]["text"] == "Second reply"
        ended = invoke("hangup", {"call_id": placed["call_id"]}, runtime)
        assert callee_lines(ended) == ["Hi", "Second reply"] and ended["status"] == "completed"
    finally:
        for process in starts:
            if process.poll() is None:
                kill(process.pid)
            if process.stdout is not None:
                process.stdout.close()


def test_a_waiting_tool_with_no_next_server_says_how_to_follow_the_call(home: Path, twilio, monkeypatch) -> None:
    """Following is bounded: when no next server can start (here a broken config), the
    waiting `say` ends with exit 7 naming the call and the commands that follow it; once
    the home is fixed, those commands take the call back."""
    from twilio_caller.server import follow

    monkeypatch.setattr(follow, "FOLLOW_SECONDS", 1.0)
    person = Person(QUESTIONS, think_at="And then?")
    runtime, first, placed = keep_open_call(home, twilio, person)
    call_id = placed["call_id"]
    config = home / "config.yaml"
    good = config.read_text()
    try:
        with ThreadPoolExecutor(1) as pool:
            saying = pool.submit(invoke, "say", {"call_id": call_id, "message": "And then?"}, runtime)
            assert person.thinking.wait(10)
            config.write_text(good.replace("webhook: {port: 0}", "webhook: {port: -1}"))
            kill(first.info["pid"])
            with pytest.raises(ServerUnavailableError) as lost:
                saying.result(timeout=90)
        assert lost.value.exit_code == 7
        assert call_id in lost.value.message and f"twilio-caller wait {call_id}" in lost.value.message
        assert "calls reconcile" in lost.value.message
        config.write_text(good)
        changed = invoke("reconcile_calls", {}, runtime)["changed"]
        assert changed == [{"call_id": call_id, "action": "taken-back", "status": "in-progress", "reason": None}]
        person.release.set()
        heard = invoke("wait", {"call_id": call_id, "timeout_seconds": 30}, runtime)
        assert heard["reply"]["text"] == "Second reply"  # the cut question asked again
        assert invoke("hangup", {"call_id": call_id}, runtime)["status"] == "completed"
    finally:
        person.release.set()
        stop_background(home)


def test_a_call_waiting_for_its_first_reply_follows_it_to_the_next_server(home: Path, twilio) -> None:
    """`call` (waiting) knows its call_id from the first progress event, so when its server
    dies before the first reply it follows the call too: the next server asks the cut
    question again and `call` returns the reply."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    person = Person(QUESTIONS, think_at="Hello")
    simulator.set_callee("+13125550101", InteractiveCallee(person, ring_seconds=2))
    first = background(home)
    try:
        with ThreadPoolExecutor(1) as pool:
            calling = pool.submit(invoke, "call", {"to": "Contact1", "message": "Hello", "keep_open": True,
                                                   "timeout_seconds": 60}, runtime)
            assert person.thinking.wait(20)
            kill(first.info["pid"])
            placed = calling.result(timeout=90)
        assert placed["reply"]["text"] == "Hi" and placed["status"] == "in-progress"
        assert find_server(home).info["pid"] != first.info["pid"]
        ended = invoke("hangup", {"call_id": placed["call_id"]}, runtime)
        assert callee_lines(ended) == ["Hi"] and ended["status"] == "completed"
        assert said_lines(ended).count("Hello") == 2  # asked, then asked again after the reprompt
    finally:
        person.release.set()
        stop_background(home)


def test_ghost_calls_of_killed_servers_are_closed_and_block_nothing(home: Path) -> None:
    """The issue's proof as written: three SIGKILLs of a simulate-mode server during live
    calls (its Twilio dies with it), then a new call: placed, not refused by `concurrency`,
    and neither `safety_rules` nor `list_calls` shows a phantom live call."""
    import subprocess
    import sys

    from conftest import CONTACTS, TEST_CONFIG

    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(mode=0o700, exist_ok=True)
    (home / "config.yaml").write_text(TEST_CONFIG.format(hold=0.3, unsteered=60).replace(
        "max_concurrent_calls: 1000", f"max_concurrent_calls: {GHOSTS}"))
    runtime = Runtime(home, environ={})
    runtime.contacts.add("Contact1", CONTACTS["Contact1"])
    how = Invocation(simulate=True, callee={"ring_seconds": 0.1, "replies": [{"say": "Hi"}]})

    def tool(name: str, /, **arguments):
        return invoke(name, arguments, runtime, how)

    env = {**os.environ, "TWILIO_CALLER_HOME": str(home)}
    command = [sys.executable, "-m", "twilio_caller", "serve", "--background", "--simulate", "--time-scale", "50"]

    def start() -> subprocess.Popen:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        assert eventually(lambda: serving_pid(home) == process.pid, 60)
        return process

    ghosts = []
    try:
        for _ in range(GHOSTS):
            serving = start()
            placed = tool("call", to="Contact1", message="Hello", keep_open=True)
            assert placed["reply"]["text"] == "Hi" and not placed["ended"]
            ghosts.append(placed["call_id"])
            kill(serving.pid)
        start()  # the next server: it closes the last ghost at start
        fresh = tool("call", to="Contact1", message="Hello again", keep_open=True)
        assert fresh["reply"]["text"] == "Hi"
        for call_id in ghosts:
            record = tool("call_status", call_id=call_id)
            assert record["ended"] and record["status"] == "completed" and record["end_reason"] == "unknown"
        assert tool("safety_rules")["today"]["live_calls"] == 1
        assert [c["call_id"] for c in tool("list_calls")["calls"] if not c["ended"]] == [fresh["call_id"]]
        assert tool("hangup", call_id=fresh["call_id"])["status"] == "completed"
    finally:
        stop_background(home)


def serving_pid(home: Path) -> int | None:
    running = find_server(home)
    return running.info.get("pid") if running is not None else None


def test_a_tool_started_after_its_server_died_follows_the_call(home: Path, twilio) -> None:
    """No tool was waiting when the server was SIGKILLed (the callee thinking in the greeting's
    Gather). The agent's next tool on the call, `wait`, finds no server, sees the call live in
    the store, starts the next server, which takes the call back, and gets the callee's reply —
    not "the server is no longer running"."""
    simulator, api = twilio
    runtime = live_home(home, simulator, api)
    person = Person(QUESTIONS, think_at="Hello")
    simulator.set_callee("+13125550101", InteractiveCallee(person, ring_seconds=2))
    first = background(home)
    try:
        placed = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True, "wait": False}, runtime)
        assert person.thinking.wait(20)
        kill(first.info["pid"])
        assert eventually(lambda: find_server(home, check_health=False) is None)  # its run file is stale
        waited = invoke("wait", {"call_id": placed["call_id"], "timeout_seconds": 60}, runtime)
        assert waited["reply"]["text"] == "Hi" and waited["status"] == "in-progress"
        assert find_server(home).info["pid"] != first.info["pid"]
        ended = invoke("hangup", {"call_id": placed["call_id"]}, runtime)
        assert ended["status"] == "completed" and callee_lines(ended) == ["Hi"]
        record = simulator.call(placed["twilio_sid"])
        assert record.wait(10) and record.status == "completed"
    finally:
        person.release.set()
        stop_background(home)


def test_a_tool_on_an_ended_call_with_no_server_starts_none(home: Path, twilio) -> None:
    """An ended call needs no server: the tool answers from the store, and nothing starts."""
    simulator, _ = twilio
    runtime, first, placed = keep_open_call(home, twilio, Person(QUESTIONS))
    invoke("hangup", {"call_id": placed["call_id"]}, runtime)
    stop_background(home)
    with pytest.raises(Exception, match="has ended"):
        invoke("say", {"call_id": placed["call_id"], "message": "Still there?"}, runtime)
    assert find_server(home, check_health=False) is None
