"""The proof of issue 18: two server instances (separate processes, separate ports) on one
PostgreSQL database, the simulated Twilio delivering each webhook request to the next instance
in turn, the agent's tools on either instance. Small sizes here; bench/instances.py runs the
full ones."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from crashkit import twilio_served
from instancekit import PUBLIC, QUESTIONS, RING_SECONDS, Deployment, Instance, answer, converse, number, person, question
from polling import eventually
from twilio_caller.errors import ServerUnavailableError, TwilioCallerError
from twilio_caller.server.client import ensure_server
from twilio_caller.server.runfile import read_run_file
from twilio_caller.simulator import InteractiveCallee

pytest.importorskip("psycopg")
CALLS = 3  # the soak's size in the suite (bench/instances.py: 50 and 200)


@pytest.fixture
def twilio():
    yield from twilio_served(10.0)


def deploy(root: Path, url: str, twilio, calls: int, *, instances: int = 2, **options) -> Deployment:
    simulator, api = twilio
    deployment = Deployment(url, simulator)
    deployment.start(root, api, instances, **options)
    runtime = deployment.runtime()
    try:
        for index in range(calls):
            runtime.contacts.add(f"Contact{index}", number(index))
            simulator.set_callee(number(index), InteractiveCallee(person, ring_seconds=2))
    finally:
        runtime.close()
    return deployment


def assert_whole(deployment: Deployment, call_id: str) -> None:
    """Every turn once, in order, and the call completed at Twilio and in the store."""
    record = deployment.instances[-1].tool("call_status", {"call_id": call_id})
    assert record["status"] == "completed"
    heard = [t["text"] for t in record["transcript"] if t["speaker"] == "callee"]
    said = [t["text"] for t in record["transcript"] if t["speaker"] == "assistant"]
    assert heard == [answer(turn) for turn in range(1, QUESTIONS + 1)]
    assert [said.count(question(turn)) for turn in range(1, QUESTIONS + 1)] == [1] * QUESTIONS
    assert deployment.simulator.call(record["twilio_sid"]).status == "completed"


def test_two_instances_answer_every_request_of_every_call(tmp_path: Path, postgres_url: str, twilio) -> None:
    deployment = deploy(tmp_path, postgres_url, twilio, CALLS)
    try:
        with ThreadPoolExecutor(CALLS) as pool:
            done = list(pool.map(lambda index: converse(deployment, index), range(CALLS)))
        for index, (call_id, replies) in enumerate(done):
            assert replies == [answer(turn) for turn in range(1, QUESTIONS + 1)]
            ended = deployment.instances[index % 2].tool("hangup", {"call_id": call_id})
            assert ended["status"] == "completed"
        for call_id, _ in done:
            assert_whole(deployment, call_id)
        for instance in deployment.instances:  # a tool in an instance's home uses it, whatever that home says
            found = ensure_server(instance.home, simulate=False, settings={"webhook.port": "another"})
            assert found.info["pid"] == instance.process.pid and instance.process.poll() is None
        served = {instance.instance_id: (instance.home / "serve.log").read_text() for instance in deployment.instances}
        assert all("Traceback" not in log for log in served.values())
    finally:
        deployment.stop()


def test_a_burst_from_both_instances_places_exactly_the_cap(tmp_path: Path, postgres_url: str, twilio) -> None:
    deployment = deploy(tmp_path, postgres_url, twilio, 1, cap=3)

    def place(index: int) -> str | None:
        try:
            return deployment.instances[index % 2].tool(
                "call", {"to": "Contact0", "message": "Hello", "wait": False})["call_id"]
        except TwilioCallerError:
            return None

    try:
        with ThreadPoolExecutor(8) as pool:
            placed = [call_id for call_id in pool.map(place, range(8)) if call_id]
        assert len(placed) == 3
        assert [call.to for call in deployment.simulator.calls] == [number(0)] * 3  # nothing more was dialled
    finally:
        deployment.stop()


def test_one_instance_killed_mid_soak_the_other_carries_its_calls(tmp_path: Path, postgres_url: str,
                                                                   twilio) -> None:
    deployment = deploy(tmp_path, postgres_url, twilio, CALLS)
    try:
        with ThreadPoolExecutor(CALLS) as pool:
            begun = list(pool.map(lambda index: converse(deployment, index, 1, 2), range(CALLS)))
            dead = deployment.instances[0]
            dead.kill()  # its calls' requests in flight go to the other instance
            with pytest.raises(ServerUnavailableError, match="instance i0 of a shared deployment"):
                ensure_server(dead.home, simulate=False)  # its home starts no server of its own
            assert read_run_file(dead.home)["pid"] == dead.process.pid
            survivor = deployment.instances[1:]
            deployment.instances[:] = survivor
            orphans = expire_leases_of(postgres_url, "i0")  # as 20 s later: the dead instance renewed nothing
            assert orphans  # the killed instance placed calls
            changed = survivor[0].tool("reconcile_calls", {})["changed"]
            assert sorted(c["call_id"] for c in changed if c["action"] == "taken-back") == sorted(orphans)
            assert set(lease_owners(postgres_url, orphans)) == {"i1"}
            rest = list(pool.map(lambda pair: converse(deployment, 0, 3, QUESTIONS, call_id=pair[1][0]),
                                 enumerate(begun)))
        for (call_id, first), (_, then) in zip(begun, rest, strict=True):
            assert first + then == [answer(turn) for turn in range(1, QUESTIONS + 1)]
            assert survivor[0].tool("hangup", {"call_id": call_id})["status"] == "completed"
            assert_whole(deployment, call_id)
    finally:
        deployment.stop()


def socket_holder(deployment: Deployment, sid: str) -> int:
    """The index of the instance holding the call's relay socket now (its latest handshake)."""
    sockets = [r.url for r in deployment.simulator.call(sid).requests if r.purpose == "relay"]
    assert sockets
    return [f"ws://127.0.0.1:{instance.port}/" in sockets[-1] for instance in deployment.instances].index(True)


def test_a_relay_call_goes_on_across_instances_and_past_the_death_of_its_sockets_one(
        tmp_path: Path, postgres_url: str, twilio) -> None:
    """The socket lives on one instance, the tools alternate: an action queued through one is
    spoken by the other over the socket, a reply heard there wakes the tool waiting here. When
    the instance holding the socket dies, Twilio's `<Connect action>` (at once) lands on the
    survivor, which carries the call on over a new socket of its own — no question asked
    twice, no reply lost, no Calls-API update."""
    deployment = deploy(tmp_path, postgres_url, twilio, 1, engine="relay")
    try:
        call_id, begun = converse(deployment, 0, 1, 3)
        assert begun == [answer(turn) for turn in range(1, 4)]
        runtime = deployment.runtime()
        try:
            sid = runtime.store.calls.get(call_id)["twilio_sid"]
        finally:
            runtime.close()
        record = deployment.simulator.call(sid)
        holder = socket_holder(deployment, sid)
        assert not [r for r in record.requests if r.purpose == "action"]  # one session so far
        dead = deployment.instances[holder]
        dead.kill()  # the socket drops with it; the handoff goes to the survivor at once
        deployment.instances.remove(dead)
        handoff = eventually(lambda: [r for r in record.requests if r.url.endswith("/handoff") and r.status_code], 30)
        assert handoff
        _, rest = converse(deployment, 0, 4, QUESTIONS, call_id=call_id)
        assert rest == [answer(turn) for turn in range(4, QUESTIONS + 1)]
        assert socket_holder(deployment, sid) == 0  # the new socket is the survivor's
        (dropped,) = [r for r in record.requests if r.url.endswith("/handoff")]
        assert (dropped.params["SessionStatus"], dropped.params["ErrorCode"]) == ("failed", "64105")
        assert deployment.instances[0].tool("hangup", {"call_id": call_id})["status"] == "completed"
        assert_whole(deployment, call_id)
        ended = [r.params["SessionStatus"] for r in record.requests if r.url.endswith("/handoff")]
        assert ended == ["failed", "ended"]  # the hang-up went over the survivor's socket: our `end`
        assert record.updates == []  # no Calls-API update at all
        assert not [r for r in record.requests if "/gather" in r.url or "/hold" in r.url]  # relay throughout
    finally:
        deployment.stop()


def test_the_survivor_ends_a_taken_over_call_at_its_maximum_duration(tmp_path: Path, postgres_url: str,
                                                                     twilio) -> None:
    """The placing instance's max-duration guard dies with it: the instance that takes the
    call over guards it to the moment it was due (placed + limit + grace), here against a
    Twilio that lets calls run past TimeLimit. Health names each instance."""
    deployment = deploy(tmp_path, postgres_url, twilio, 1, max_duration=10)
    deployment.simulator.chaos.ignore_time_limit = True  # only the servers' own guard ends the call
    placing, survivor = deployment.instances
    try:
        assert [instance.client.health()["instance_id"] for instance in deployment.instances] == ["i0", "i1"]
        placed = placing.tool("call", {"to": "Contact0", "message": question(1), "keep_open": True,
                                       "wait": True, "timeout_seconds": 60})
        assert placed["reply"]["text"] == answer(1)
        placing.kill()
        assert deployment.simulator.call(placed["twilio_sid"]).status == "in-progress"  # its guard did not fire
        expire_leases_of(postgres_url, "i0")
        placed_ago(postgres_url, placed["call_id"], 12 + RING_SECONDS)  # due (ring + 10 s + 5 s grace) in about 3 s
        changed = survivor.tool("reconcile_calls", {})["changed"]
        assert [(c["call_id"], c["action"]) for c in changed] == [(placed["call_id"], "taken-back")]
        ended = deployment.simulator.wait_for_call(placed["twilio_sid"], 30)
        assert ended.end_reason == "api-hangup"
        assert survivor.tool("call_status", {"call_id": placed["call_id"]})["status"] == "completed"
    finally:
        deployment.stop()


def streamed_call(placing: Instance) -> tuple[list[str], list[tuple[str, str]]]:
    """An interactive `call` placed on `placing`, its progress streamed, answered: the lines
    said on record, and the lines said and heard its stream showed."""
    shown: list[dict] = []
    assert placing.client is not None
    result = placing.client.invoke("call", {"to": "Contact0", "message": question(1), "interactive": True,
                                            "wait": True, "timeout_seconds": 60}, wait_seconds=70,
                                   progress=shown.append)
    assert result["reply"]["text"] == answer(1)
    said = [t["text"] for t in result["transcript"] if t["speaker"] == "assistant"]
    return said, [(event["event"], event["text"]) for event in shown if event.get("event") in ("said", "heard")]


def test_a_streamed_call_shows_what_the_other_instance_saw(tmp_path: Path, postgres_url: str, twilio) -> None:
    """Every webhook request of the call reaches the other instance (the balancer's choice):
    the `call` streaming on the placing instance still shows each line said and heard, once,
    as on one instance."""
    deployment = deploy(tmp_path, postgres_url, twilio, 1)
    placing, answering = deployment.instances
    deployment.simulator.chaos.round_robin(PUBLIC, [answering.base_url])
    try:
        said, lines = streamed_call(placing)
        assert len(said) == 3 and said[1] == question(1)  # the opening, the message, the closing
        assert lines == [("said", said[0]), ("said", said[1]), ("heard", answer(1)), ("said", said[2])]
    finally:
        deployment.stop()


class SilentOnce:
    """Says nothing the first time it is asked (the question is asked again), then answers as
    `person` does."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, heard: str) -> str:
        self.asked += 1
        return "" if self.asked == 1 else person(heard)


def test_a_streamed_call_shows_what_a_request_that_changed_nothing_showed_elsewhere(
        tmp_path: Path, postgres_url: str, twilio) -> None:
    """A request whose answer changes nothing the other instances are woken for — the question
    asked again after silence — still puts what it showed on record: here the other instance
    says the reprompt, then the reply reaches the placing instance, whose streaming `call`
    shows the reprompt in its place, before the reply it then hears itself."""
    from twilio_caller.conversation import REPROMPT

    deployment = deploy(tmp_path, postgres_url, twilio, 1)
    simulator = deployment.simulator
    placing, answering = deployment.instances
    simulator.chaos.round_robin(PUBLIC, [answering.base_url])
    simulator.chaos.on_next_webhook(  # the reply, and what follows it, to the placing instance
        lambda url, params: "/gather" in url and bool(params.get("SpeechResult")),
        lambda: simulator.chaos.round_robin(PUBLIC, [placing.base_url]), in_flight=False)
    simulator.set_callee(number(0), InteractiveCallee(SilentOnce(), ring_seconds=2))
    try:
        said, lines = streamed_call(placing)
        assert said[1:4] == [question(1), REPROMPT, question(1)] and len(said) == 5
        assert lines == [*[("said", text) for text in said[:4]], ("heard", answer(1)), ("said", said[4])]
    finally:
        deployment.stop()


def on_record(deployment: Deployment, call_id: str) -> tuple[object, ...]:
    """What the store holds of the call: its row, turns, events and state (the lease's time
    aside: the instance renews it as time passes)."""
    from dataclasses import replace

    runtime = deployment.runtime()
    try:
        state = runtime.store.call_states.load(call_id)
        assert state is not None
        events = runtime.store.query("SELECT COUNT(*) AS n FROM events WHERE call_id = ?", (call_id,))[0]["n"]
        return (dict(runtime.store.calls.get(call_id)), [dict(turn) for turn in runtime.store.calls.turns(call_id)],
                events, replace(state, lease_until=None))
    finally:
        runtime.close()


def cancel_waiting_read_backs(url: str) -> int:
    """Cancel the call read-backs waiting on a lock (as a statement timeout would); how many."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        return len(admin.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE %s", ("%AS read_seen%",)).fetchall())


def test_a_request_whose_call_cannot_be_read_is_a_500_that_changes_nothing(
        tmp_path: Path, postgres_url: str, twilio) -> None:
    """The store cannot be read for one request: the call's read-back, waiting on a lock, is
    canceled by the database. The instance answers exactly 500 (its answer, not a crash), with
    nothing recorded and nothing sent to the Calls API; Twilio's next try, the store readable
    again, is answered as ever, and the call goes on."""
    import psycopg
    from twilio.request_validator import RequestValidator

    from crashkit import Person

    deployment = deploy(tmp_path, postgres_url, twilio, 1, instances=1)
    simulator = deployment.simulator
    (instance,) = deployment.instances
    callee = Person({question(1): answer(1)}, think_at=question(1))
    simulator.set_callee(number(0), InteractiveCallee(callee, ring_seconds=0.5))
    try:
        placed = instance.tool("call", {"to": "Contact0", "message": question(1), "interactive": True,
                                        "wait": False})
        call_id, sid = placed["call_id"], placed["twilio_sid"]
        assert callee.thinking.wait(30)  # in the call's first Gather: no request toward the instance open
        token = on_record(deployment, call_id)[0]["token"]
        path, form = f"/twilio/{call_id}/{token}/gather?n=1", {"CallSid": sid, "SpeechResult": answer(1)}
        headers = {"X-Twilio-Signature": RequestValidator(simulator.auth_token).compute_signature(PUBLIC + path, form)}
        before = on_record(deployment, call_id)
        with ThreadPoolExecutor(1) as twilio_side, psycopg.connect(postgres_url) as other:
            other.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")  # held until the rollback
            asking = twilio_side.submit(httpx.post, instance.base_url + path, data=form, headers=headers,
                                        trust_env=False, timeout=30)
            assert eventually(lambda: cancel_waiting_read_backs(postgres_url) >= 1, 30)
            refused = asking.result(timeout=30)
            other.rollback()
        assert (refused.status_code, refused.content) == (500, b"")  # not Starlette's page for a crash
        assert on_record(deployment, call_id) == before
        assert len(simulator.calls) == 1 and simulator.call(sid).updates == []
        again = httpx.post(instance.base_url + path, data=form, headers=headers, trust_env=False, timeout=30)
        assert again.status_code == 200 and "<Hangup" in again.text  # the reply, then the closing
        callee.release.set()
        assert simulator.wait_for_call(sid, 30).status == "completed"
        record = instance.tool("call_status", {"call_id": call_id})
        assert [t["text"] for t in record["transcript"] if t["speaker"] == "callee"] == [answer(1)]
        log = (instance.home / "serve.log").read_text()
        assert "Traceback" not in log and f"call {call_id}: the PostgreSQL database" in log
    finally:
        callee.release.set()
        deployment.stop()


def placed_ago(url: str, call_id: str, seconds: float) -> None:
    """Move the call's placing time `seconds` into the past (as if placed that long ago)."""
    from datetime import datetime, timedelta, timezone

    import psycopg

    moment = (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(timespec="seconds")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("UPDATE calls SET created_at = %s WHERE id = %s", (moment, call_id))


def expire_leases_of(url: str, instance_id: str) -> list[str]:
    """Move the instance's call leases into the past; the calls it held."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "UPDATE call_state SET lease_until = '2000-01-01T00:00:00+00:00' WHERE owner LIKE %s RETURNING call_id",
            (f"{instance_id}/%",)).fetchall()
    return [row[0] for row in rows]


def lease_owners(url: str, call_ids: list[str]) -> list[str]:
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT owner FROM call_state WHERE call_id = ANY(%s)", (call_ids,)).fetchall()
    return [row[0].split("/", 1)[0] for row in rows]


def test_in_one_process_any_instance_answers_and_a_wrong_token_changes_nothing(
        tmp_path: Path, postgres_url: str, twilio) -> None:
    """Two instances as threads of this process (the webhook's shared path traced): a call
    placed on one is answered by both in turn; a request for it with another token, or for a
    call nobody placed, is 404 on either and changes nothing."""
    import httpx

    from instancekit import PUBLIC, config
    from twilio_caller.runtime import Runtime
    from twilio_caller.server.client import ServerClient
    from twilio_caller.server.runner import Deployment as Instance
    from twilio_caller.server.runner import ServerRunner, ServerThread

    simulator, api = twilio
    environ = {"TWILIO_CALLER_DATABASE_URL": postgres_url, "TWILIO_CALLER_PUBLIC_URL": PUBLIC}
    threads, clients = [], []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        (home / "config.yaml").write_text(config(simulator, api))
        (home / "config.yaml").chmod(0o600)
        runner = ServerRunner(Runtime(home, environ=environ), simulate=False, idle_exit=True,
                              deployment=Instance(name, "127.0.0.1", 0))
        threads.append(ServerThread(runner).start())
        clients.append(ServerClient(read_run_file(home)))
    simulator.chaos.round_robin(PUBLIC, [f"http://127.0.0.1:{t.runner.info['webhook_port']}" for t in threads])
    runtime = Runtime(tmp_path / "a", environ=environ)
    try:
        runtime.contacts.add("Contact0", number(0))
        simulator.set_callee(number(0), InteractiveCallee(person, ring_seconds=2))
        placed = clients[0].invoke("call", {"to": "Contact0", "message": question(1), "keep_open": True,
                                            "wait": True, "timeout_seconds": 60}, wait_seconds=70)
        assert placed["reply"]["text"] == answer(1)
        second = clients[1].invoke("say", {"call_id": placed["call_id"], "message": question(2),
                                           "timeout_seconds": 60}, wait_seconds=70)
        assert second["reply"]["text"] == answer(2)
        before = runtime.store.calls.turns(placed["call_id"])
        for thread in threads:
            base = f"http://127.0.0.1:{thread.runner.info['webhook_port']}/twilio"
            for path in (f"{placed['call_id']}/not-its-token/gather?n=1", "call_0000000000000000/x/voice"):
                answered = httpx.post(f"{base}/{path}", data={"SpeechResult": "Opt me in"}, trust_env=False)
                assert answered.status_code == 404
        assert runtime.store.calls.turns(placed["call_id"]) == before
        ended = clients[1].invoke("hangup", {"call_id": placed["call_id"]}, wait_seconds=30)
        assert ended["status"] == "completed"
        assert [t["text"] for t in ended["transcript"] if t["speaker"] == "callee"] == [answer(1), answer(2)]
    finally:
        runtime.close()
        for thread in threads:
            thread.stop()


def _lock_waiters(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as probe:
        return int(probe.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                                 " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                                 ).fetchone()[0])


def test_a_call_waiting_on_the_database_never_holds_up_another_call(tmp_path: Path, postgres_url: str,
                                                                     twilio) -> None:
    """The server's event loop never waits on PostgreSQL: while a test session holds call A's
    lock (as a slow transaction of another instance would), a `say` on A waits for it in a store
    thread, and meanwhile a `say` on call B of the same instance is answered, reply and all. (With
    store calls made on the loop, B's request is not even read until A's lock is released.)"""
    import psycopg

    from instancekit import PUBLIC, config
    from polling import eventually
    from twilio_caller.runtime import Runtime
    from twilio_caller.server.client import ServerClient
    from twilio_caller.server.runner import Deployment as Instance
    from twilio_caller.server.runner import ServerRunner, ServerThread
    from twilio_caller.store.sql.dialect import Lock

    simulator, api = twilio
    environ = {"TWILIO_CALLER_DATABASE_URL": postgres_url, "TWILIO_CALLER_PUBLIC_URL": PUBLIC}
    home = tmp_path / "a"
    home.mkdir()
    (home / "config.yaml").write_text(config(simulator, api))
    (home / "config.yaml").chmod(0o600)
    thread = ServerThread(ServerRunner(Runtime(home, environ=environ), simulate=False, idle_exit=True,
                                       deployment=Instance("a", "127.0.0.1", 0))).start()
    simulator.chaos.round_robin(PUBLIC, [f"http://127.0.0.1:{thread.runner.info['webhook_port']}"])
    runtime = Runtime(home, environ=environ)
    try:
        calls = []
        for index in (0, 1):
            runtime.contacts.add(f"Contact{index}", number(index))
            simulator.set_callee(number(index), InteractiveCallee(person, ring_seconds=2))
            placed = ServerClient(read_run_file(home)).invoke(
                "call", {"to": f"Contact{index}", "message": question(1), "keep_open": True, "wait": True,
                         "timeout_seconds": 60}, wait_seconds=70)
            assert placed["reply"]["text"] == answer(1)
            calls.append(placed["call_id"])
        first, second = calls
        with ThreadPoolExecutor(1) as agent_on_a, psycopg.connect(postgres_url, autocommit=True) as other:
            with other.transaction():
                other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (int(Lock.CALL), first))
                waiting = agent_on_a.submit(ServerClient(read_run_file(home)).invoke, "say",
                                            {"call_id": first, "message": question(2), "timeout_seconds": 60},
                                            wait_seconds=90)
                assert eventually(lambda: _lock_waiters(postgres_url) > 0, 30)
                other_call = ServerClient(read_run_file(home)).invoke(
                    "say", {"call_id": second, "message": question(2), "timeout_seconds": 30}, wait_seconds=40)
                assert other_call["reply"]["text"] == answer(2)
                assert not waiting.done()  # A still waits for its lock
            assert waiting.result(timeout=60)["reply"]["text"] == answer(2)  # released: A goes on
        for call_id in calls:
            ended = ServerClient(read_run_file(home)).invoke("hangup", {"call_id": call_id}, wait_seconds=30)
            assert [t["text"] for t in ended["transcript"] if t["speaker"] == "callee"] == [answer(1), answer(2)]
    finally:
        runtime.close()
        thread.stop()
