"""A real PostgreSQL for the tests: a database of their own per test session
(tc_test_<random>, created through the `postgres` database and dropped at the end), and a
fresh schema per test inside it. Where no server answers, the tests that need it skip — or,
with TWILIO_CALLER_REQUIRE_POSTGRES=1 (as .ci/run sets), fail."""

from __future__ import annotations

import os
import secrets
import threading
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

ADMIN_URL_ENV = "TWILIO_CALLER_TEST_POSTGRES"
REQUIRE_ENV = "TWILIO_CALLER_REQUIRE_POSTGRES"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOW_TO_ENABLE = (f"start PostgreSQL at 127.0.0.1:5432 (trust auth, user postgres) or set {ADMIN_URL_ENV}="
                 "postgresql://user@host:port/postgres to run them")


def admin_url() -> str:
    return os.environ.get(ADMIN_URL_ENV, "").strip() or DEFAULT_ADMIN_URL


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


def database_url(name: str) -> str:
    base, _, _ = admin_url().rpartition("/")
    return f"{base}/{name}"


def with_schema(url: str, schema: str) -> str:
    return f"{url}?options={quote(f'-csearch_path={schema}')}"


def new_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


# -- work done in separate processes (spawned: each opens its own connection) -------------

PROCESSES = 6


def race(target: Any, url: str, *arguments: Any) -> list[Any]:
    """`target` run by PROCESSES spawned processes released together at one barrier; what each
    put in the results queue. Every process must end cleanly."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(PROCESSES), spawn.Queue()
    counted = spawn.Barrier(PROCESSES)  # reserve_in_process: where the racers meet inside the race window
    processes = [spawn.Process(target=target, args=(url, *arguments, n, barrier, counted, results))
                 if arguments else spawn.Process(target=target, args=(url, barrier, results))
                 for n in range(PROCESSES)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [o for o in outcomes if isinstance(o, str) and o.startswith("error: ")] == []
    assert all(process.exitcode == 0 for process in processes)
    return outcomes


MEET_SECONDS = 1.0


def _verdict(rule: str, usage: Any, counted: Any) -> tuple[bool, str | None]:
    if rule == "contact_cap":
        allowed = usage.contact_calls_today < 3
    elif rule == "concurrency":
        allowed = usage.live_calls < 2
    else:  # min_gap: nothing placed to this contact yet
        allowed = usage.last_contact_call_at is None
    _meet_the_other_racers(counted)
    return allowed, None if allowed else rule


def _meet_the_other_racers(counted: Any) -> None:
    """Between counting and recording (the window the locks close), until every racer has
    counted: without the locks all count before any records. With them, the one inside waits
    MEET_SECONDS at most (the others wait on the lock); the barrier then breaks and nobody
    waits again."""
    try:
        counted.wait(timeout=MEET_SECONDS)
    except threading.BrokenBarrierError:
        pass


def reserve_in_process(url: str, rule: str, n: int, barrier: Any, counted: Any, results: Any) -> None:
    """Open the store, wait for every process at the barrier, then reserve one call."""
    from dataclasses import dataclass

    from pathlib import Path

    from twilio_caller.store.ports import NewCall, Reservation
    from twilio_caller.store.sqlite import SqliteStore

    if url.startswith("postgres"):
        from twilio_caller.store.postgres import PostgresStore

    @dataclass(frozen=True)
    class Verdict:
        allowed: bool
        rule: str | None
        reason: str = "race"

    number = f"+1312555{n:04d}" if rule == "concurrency" else "+13125550101"
    store = PostgresStore(url) if url.startswith("postgres") else SqliteStore(Path(url))  # else a file
    try:
        barrier.wait(timeout=60)
        reservation = Reservation(tool="call", to_number=number, contact_id=None, message="Hi", now=RACE_NOW,
                                  day=RACE_DAY, call=NewCall(id=f"call_{n}", token="t", to_number=number,
                                                             mode="notify"))
        _, reserved = store.ledger.reserve(reservation, lambda usage: Verdict(*_verdict(rule, usage, counted)))
        results.put(reserved.call_id)
    except Exception as exc:  # reported to the test, which fails on it (no silent hang)
        results.put(f"error: {exc}")
        raise
    finally:
        store.close()


def open_in_process(url: str, barrier: Any, results: Any) -> None:
    """Open (and so migrate) the store the moment every process is at the barrier."""
    from twilio_caller.store.postgres import PostgresStore

    barrier.wait(timeout=60)
    store = PostgresStore(url)
    try:
        results.put(store.applied_migrations())
    finally:
        store.close()


RACE_NOW = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)
RACE_DAY = (datetime(2026, 6, 10, 5, 0, tzinfo=timezone.utc), datetime(2026, 6, 11, 5, 0, tzinfo=timezone.utc))


# -- a store with a row in every table -------------------------------------------------

def fill_store(store: Any) -> None:
    """A contact (opted out), a call with turns, an event, its decision and state, a scheduled call."""
    from twilio_caller.store.ports import Answer, ContactFields, NewCall, NewScheduled, Reservation

    t0 = RACE_NOW
    ann, = store.contacts.add([(ContactFields("Ann", "+13125550101", "America/Chicago", None, "n"), "ann")], t0)
    store.contacts.opt_out("+13125550101", t0 + timedelta(minutes=1))
    new = NewCall(id="call_1", token="t", to_number=ann.number, mode="interactive", contact_id=ann.id,
                  to_name="Ann", message="Hi", keep_open=True)
    store.ledger.reserve(Reservation(tool="call", to_number=ann.number, contact_id=ann.id, message="Hi", now=t0,
                                     day=RACE_DAY, call=new), lambda usage: _Allow())
    store.calls.placed("call_1", "CA1", "queued")
    store.calls.add_turns("call_1", [("assistant", "Hello", None, "k1"), ("callee", "Hi", 0.9, "k2")], t0)
    store.calls.add_event("call_1", "status", "ringing", 1, {"CallStatus": "ringing"}, t0, content_key=None)
    store.calls.advance("call_1", "completed", {"duration_seconds": 12}, t0 + timedelta(seconds=30))
    store.call_states.start("call_1", "server-a", 600, t0 + timedelta(seconds=20), t0)
    store.call_states.commit("call_1", Answer("gather:1", "<Response/>", [("callee", "Yes", 0.8, "k3")], 1, 0, 1,
                                              ["Hello"], 0), t0)
    store.schedule.add(NewScheduled("sch_1", {"to": "Ann"}, "Ann", ann.number, t0 + timedelta(hours=1),
                                    ["busy"], 2, 10.0, True, None), t0)


class _Allow:
    allowed, rule, reason = True, None, "ok"
