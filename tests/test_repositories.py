"""The store's repository contracts (twilio_caller/store/ports.py), one test each, run against
every implementation of IMPLEMENTATIONS: SQLite, and PostgreSQL (a fresh schema of the test
session's database; skipped, with one line saying how to enable it, where no server runs).
Only the interfaces are used here, never SQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from twilio_caller.store.ports import (
    Answer, CallFilter, CallStateRecord, Carried, ContactFields, LeaseHolder, NewCall, NewScheduled, Reservation, Store, Taken, Usage,
)
from twilio_caller.store.sqlite import SqliteStore

def _postgres(request: pytest.FixtureRequest, _: Path) -> Store:
    from twilio_caller.store.postgres import PostgresStore

    return PostgresStore(request.getfixturevalue("postgres_url"))


IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest, Path], Store]] = {
    "sqlite": lambda _, directory: SqliteStore(directory / "twilio-caller.db"),
    "postgres": _postgres,
}
T0 = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)
DAY = (datetime(2026, 6, 10, 5, 0, tzinfo=timezone.utc), datetime(2026, 6, 11, 5, 0, tzinfo=timezone.utc))


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = IMPLEMENTATIONS[request.param](request, tmp_path)
    yield opened
    opened.close()


def fields(name: str, number: str, timezone_name: str | None = None) -> tuple[ContactFields, str]:
    return ContactFields(name, number, timezone_name, None, None), name.casefold()


def call(call_id: str, number: str = "+13125550101", contact_id: int | None = None) -> NewCall:
    return NewCall(id=call_id, token="t", to_number=number, mode="notify", contact_id=contact_id,
                   to_name="Contact1", message="Hi")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str | None = None
    reason: str = "test"


def reservation(number: str = "+13125550101", contact_id: int | None = None, now: datetime = T0,
                new: NewCall | None = None, tool: str = "call") -> Reservation:
    return Reservation(tool=tool, to_number=number, contact_id=contact_id, message="Hi", now=now, day=DAY,
                       call=new)


def allow(_: Usage) -> Verdict:
    return Verdict(True)


# -- contacts ----------------------------------------------------------------------------


def test_contacts_are_added_found_by_key_and_number_and_listed_by_key(store: Store) -> None:
    bob, ann = store.contacts.add([fields("Bob", "+13125550102"), fields("ann", "+13125550101", "America/Chicago")], T0)
    assert bob.id != ann.id and ann.timezone == "America/Chicago" and ann.created_at == ann.updated_at
    assert [c.name for c in store.contacts.all()] == ["ann", "Bob"]
    assert store.contacts.by_key("bob") == bob
    assert store.contacts.by_number("+13125550101") == ann
    assert store.contacts.by_key("nobody") is None and store.contacts.by_number("+13125550199") is None


def test_adding_contacts_is_all_or_nothing_and_names_the_clash(store: Store) -> None:
    store.contacts.add([fields("Ann", "+13125550101")], T0)
    with pytest.raises(Taken) as taken:
        store.contacts.add([fields("Bob", "+13125550102"), fields("Cy", "+13125550101")], T0)
    assert (taken.value.field, taken.value.holder, taken.value.index) == ("number", "Ann", 1)
    assert [c.name for c in store.contacts.all()] == ["Ann"]  # Bob was not written either
    with pytest.raises(Taken) as taken:
        store.contacts.add([fields("ANN", "+13125550103")], T0)
    assert (taken.value.field, taken.value.holder, taken.value.index) == ("name", "Ann", 0)


def test_updating_a_contact_keeps_names_and_numbers_unique_and_can_opt_in(store: Store) -> None:
    ann, bob = store.contacts.add([fields("Ann", "+13125550101"), fields("Bob", "+13125550102")], T0)
    with pytest.raises(Taken) as taken:
        store.contacts.update(ann.id, ContactFields("Ann", "+13125550102", None, None, None), "ann",
                              opt_in=False, now=T0)
    assert (taken.value.field, taken.value.holder) == ("number", "Bob")
    store.contacts.opt_out("+13125550101", T0)
    store.contacts.opt_out("+13125550101", T0 + timedelta(hours=1))  # the first opt-out is kept
    assert store.contacts.by_key("ann").opted_out_at == T0.isoformat()  # type: ignore[union-attr]
    later = T0 + timedelta(days=1)
    store.contacts.update(ann.id, ContactFields("Anne", "+13125550101", None, "Polly.Joanna", "note"), "anne",
                          opt_in=True, now=later)
    anne = store.contacts.by_key("anne")
    assert anne is not None and store.contacts.by_key("ann") is None
    assert (anne.opted_out_at, anne.voice, anne.notes, anne.updated_at) == (None, "Polly.Joanna", "note",
                                                                           later.isoformat())
    store.contacts.remove(bob.id)
    assert [c.name for c in store.contacts.all()] == ["Anne"]


# -- the call log ------------------------------------------------------------------------


def test_a_new_call_is_pending_and_placing_it_keeps_a_status_that_moved_on(store: Store) -> None:
    store.calls.insert(call("call_a"), T0)
    row = store.calls.get("call_a")
    assert row is not None and (row["status"], row["placed"], row["created_at"]) == ("pending", 1, T0.isoformat())
    store.calls.placed("call_a", "CA1", "queued")
    assert (store.calls.get("call_a") or {})["status"] == "queued"
    store.calls.advance("call_a", "ringing", {}, T0)
    store.calls.placed("call_a", "CA1", "queued")
    assert (store.calls.get("call_a") or {})["twilio_sid"] == "CA1"
    assert (store.calls.get("call_a") or {})["status"] == "ringing"
    assert store.calls.get("call_missing") is None


def test_a_call_moves_forward_only_and_a_final_status_is_final(store: Store) -> None:
    store.calls.insert(call("call_a"), T0)
    assert store.calls.advance("call_a", "in-progress", {"answered_by": "human"}, T0) == "in-progress"
    assert store.calls.advance("call_a", "ringing", {"duration_seconds": None}, T0) == "in-progress"
    end = T0 + timedelta(minutes=2)
    assert store.calls.advance("call_a", "completed", {"duration_seconds": 42}, end) == "completed"
    assert store.calls.advance("call_a", "busy", {}, end + timedelta(minutes=1)) == "completed"
    row = store.calls.get("call_a") or {}
    assert (row["answered_by"], row["duration_seconds"], row["ended_at"]) == ("human", 42, end.isoformat())
    assert store.calls.advance("call_unknown", "ringing", {}, T0) == "ringing"


def test_a_refused_placement_fails_the_call_and_leaves_the_live_calls(store: Store) -> None:
    store.calls.insert(call("call_a"), T0)
    store.calls.insert(call("call_b"), T0)
    assert [row["id"] for row in store.calls.live()] == ["call_a", "call_b"]
    store.calls.not_placed("call_a", "Twilio error 21211", T0)
    store.calls.advance("call_b", "completed", {}, T0)
    store.calls.insert(call("call_c"), T0)
    row = store.calls.get("call_a") or {}
    assert (row["status"], row["placed"], row["error"]) == ("failed", 0, "Twilio error 21211")
    assert [row["id"] for row in store.calls.live()] == ["call_c"]


def test_turns_and_events_are_recorded_once(store: Store) -> None:
    store.calls.insert(call("call_a"), T0)
    assert store.calls.add_turns("call_a", [("assistant", "Hello", None, None), ("callee", "Hi", 0.9, "g1")], T0) \
        == [True, True]
    assert store.calls.add_turns("call_a", [("callee", "Hi", 0.9, "g1")], T0) == [False]
    assert store.calls.has_turn("call_a", "g1") and not store.calls.has_turn("call_a", "g2")
    assert [(t["speaker"], t["text"], t["confidence"]) for t in store.calls.turns("call_a")] == [
        ("assistant", "Hello", None), ("callee", "Hi", 0.9)]
    assert store.calls.add_event("call_a", "status", "ringing", 1, {"a": 1}, T0, content_key=None)
    assert not store.calls.add_event("call_a", "status", "ringing", 1, {"a": 2}, T0, content_key=None)
    assert store.calls.add_event("call_a", "audio", None, None, {"text": "x"}, T0, content_key="k")
    assert not store.calls.add_event("call_a", "audio", None, None, {"text": "x"}, T0, content_key="k")
    assert store.calls.add_event("call_a", "audio", None, None, {"text": "y"}, T0, content_key=None)
    assert store.calls.event_payloads("call_a", "audio") == [{"text": "x"}, {"text": "y"}]


def test_calls_are_found_by_contact_removed_contact_status_and_time(store: Store) -> None:
    ann, = store.contacts.add([fields("Ann", "+13125550101")], T0)
    store.calls.insert(call("call_1", contact_id=ann.id), T0)
    store.calls.insert(call("call_2", contact_id=ann.id), T0 + timedelta(hours=1))
    store.calls.insert(NewCall(id="call_3", token="t", to_number="+13125550102", mode="notify", to_name="Bob"),
                       T0 + timedelta(hours=2))
    store.calls.advance("call_1", "completed", {}, T0)
    ids = lambda where, limit=10: [row["id"] for row in store.calls.find(where, limit)]  # noqa: E731
    assert ids(CallFilter()) == ["call_3", "call_2", "call_1"]
    assert ids(CallFilter(), 1) == ["call_3"]
    assert ids(CallFilter(contact_id=ann.id)) == ["call_2", "call_1"]
    assert ids(CallFilter(removed_contact="bob")) == ["call_3"]
    assert ids(CallFilter(status="completed")) == ["call_1"]
    assert ids(CallFilter(since=T0 + timedelta(hours=1))) == ["call_3", "call_2"]
    assert ids(CallFilter(before=T0 + timedelta(hours=1))) == ["call_1"]
    assert ids(CallFilter(ended_only=True)) == ["call_1"]
    assert store.calls.latest_to("+13125550101", T0 + timedelta(minutes=30)) == "call_2"
    assert store.calls.latest_to("+13125550101", T0 + timedelta(hours=3)) is None


def test_purging_deletes_transcripts_of_ended_calls_only(store: Store) -> None:
    for call_id in ("call_live", "call_done"):
        store.calls.insert(call(call_id), T0)
        store.calls.add_turns(call_id, [("callee", "words", None, None)], T0)
        store.calls.add_event(call_id, "status", "ringing", 1, {}, T0, content_key=None)
    store.calls.advance("call_done", "completed", {}, T0)
    assert store.calls.purge(CallFilter(ended_only=True, before=T0)) == {"turns": 0, "events": 0}
    assert store.calls.purge(CallFilter(ended_only=True)) == {"turns": 1, "events": 1}
    assert store.calls.turns("call_done") == [] and len(store.calls.turns("call_live")) == 1
    assert store.calls.get("call_done") is not None  # the call row stays, for caps and the audit


# -- the safety ledger -------------------------------------------------------------------


def test_an_allowed_reservation_records_the_call_and_its_audited_decision(store: Store) -> None:
    verdict, reserved = store.ledger.reserve(reservation(new=call("call_a")), allow)
    assert verdict.allowed and reserved.call_id == "call_a"
    assert (store.calls.get("call_a") or {})["status"] == "pending"
    decision = store.ledger.decisions(1)[0]
    assert (decision["id"], decision["call_id"], decision["allowed"], decision["tool"]) == (
        reserved.decision_id, "call_a", 1, "call")
    assert store.ledger.approval_holds(reserved.decision_id, "call_a", "+13125550101")
    assert not store.ledger.approval_holds(reserved.decision_id, "call_a", "+13125550199")
    assert not store.ledger.approval_holds(reserved.decision_id + 1, "call_a", "+13125550101")
    store.calls.placed("call_a", "CA1", "queued")
    assert not store.ledger.approval_holds(reserved.decision_id, "call_a", "+13125550101")  # dialled once


def test_a_refused_or_dry_reservation_records_no_call_and_no_approval(store: Store) -> None:
    verdict, reserved = store.ledger.reserve(reservation(new=call("call_a")), lambda _: Verdict(False, "min_gap", "wait"))
    assert not verdict.allowed and reserved.call_id is None and store.calls.get("call_a") is None
    assert not store.ledger.approval_holds(reserved.decision_id, "call_a", "+13125550101")
    _, dry = store.ledger.reserve(reservation(tool="call (dry run)"), allow)
    assert dry.call_id is None and dry.decision_id > reserved.decision_id
    assert [(d["rule"], d["allowed"]) for d in store.ledger.decisions(5)] == [(None, 1), ("min_gap", 0)]


def test_the_usage_a_decision_sees(store: Store) -> None:
    ann, = store.contacts.add([fields("Ann", "+13125550101")], T0)
    seen: list[Usage] = []

    def look(usage: Usage) -> Verdict:
        seen.append(usage)
        return Verdict(True)

    store.calls.insert(call("call_yesterday", contact_id=ann.id), DAY[0] - timedelta(minutes=1))
    store.calls.advance("call_yesterday", "completed", {}, T0)
    store.calls.insert(call("call_1", contact_id=ann.id), T0)
    store.calls.insert(call("call_other", "+13125550102"), T0 + timedelta(minutes=5))
    store.calls.insert(call("call_refused", contact_id=ann.id), T0 + timedelta(minutes=9))
    store.calls.not_placed("call_refused", "no", T0)
    store.ledger.reserve(reservation(contact_id=ann.id, now=T0 + timedelta(minutes=10)), look)
    store.ledger.reserve(reservation("+13125550102", now=T0 + timedelta(minutes=10)), look)
    assert seen[0] == Usage(live_calls=2, calls_today=2, contact_calls_today=1, last_contact_call_at=T0)
    assert seen[1] == Usage(live_calls=2, calls_today=2, contact_calls_today=1,
                            last_contact_call_at=T0 + timedelta(minutes=5))


def test_the_days_usage_per_contact(store: Store) -> None:
    ann, bob = store.contacts.add([fields("Ann", "+13125550101"), fields("Bob", "+13125550102")], T0)
    for n, contact_id in enumerate((ann.id, ann.id, bob.id)):
        store.calls.insert(call(f"call_{n}", contact_id=contact_id), T0)
    store.calls.advance("call_0", "completed", {}, T0)
    store.calls.insert(call("call_old", contact_id=bob.id), DAY[0] - timedelta(seconds=1))
    usage = store.ledger.day_usage(DAY)
    assert (usage.calls, usage.live_calls, dict(usage.per_contact)) == (3, 3, {ann.id: 2, bob.id: 1})


def test_concurrent_reservations_never_pass_a_cap(store: Store) -> None:
    cap, results = 3, []

    def capped(usage: Usage) -> Verdict:
        return Verdict(usage.contact_calls_today < cap, None if usage.contact_calls_today < cap else "daily_cap")

    def reserve(n: int) -> None:
        results.append(store.ledger.reserve(reservation(new=call(f"call_{n}")), capped)[1].call_id)

    threads = [threading.Thread(target=reserve, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([call_id for call_id in results if call_id]) == cap
    assert len(store.calls.find(CallFilter(), 100)) == cap


# -- call state and leases ---------------------------------------------------------------


def test_a_requests_answer_is_committed_once_with_its_lines_and_state(store: Store) -> None:
    store.calls.insert(call("call_a"), T0)
    assert store.call_states.load("call_a") is None and store.call_states.answer("call_a", "voice") is None
    store.call_states.start("call_a", "me", 300, T0 + timedelta(seconds=20), T0)
    store.call_states.queue_action("call_a", {"say": "one"}, T0)
    store.call_states.queue_action("call_a", {"say": "two"}, T0)
    answer = Answer(key="gather:1", twiml="<Response/>", lines=[("assistant", "one", None, "say:1")],
                    gather_seq=1, hold_seq=0, reprompts_left=2, last_prompt=["one"], delivered=1)
    assert store.call_states.commit("call_a", answer, T0) == "<Response/>"
    again = Answer(key="gather:1", twiml="<Other/>", lines=[("assistant", "x", None, "say:x")],
                   gather_seq=9, hold_seq=9, reprompts_left=0, last_prompt=[], delivered=1)
    assert store.call_states.commit("call_a", again, T0) == "<Response/>"  # the answer on record
    state = state_of(store, "call_a")
    assert (state.gather_seq, state.reprompts_left, state.last_prompt, state.pending_actions, state.max_seconds,
            state.owner) == (1, 2, ["one"], [{"say": "two"}], 300, "me")
    assert [t["text"] for t in store.calls.turns("call_a")] == ["one"]
    assert store.call_states.answer("call_a", "gather:1") == "<Response/>"
    assert [store.call_states.issue_hold("call_a", T0) for _ in range(2)] == [1, 2]
    store.call_states.drop_actions("call_a", T0)
    assert state_of(store, "call_a").pending_actions == []


def test_what_an_answer_carries_to_the_next_instance_is_kept_and_read_back(store: Store) -> None:
    store.calls.insert(call("call_a"), T0)
    store.call_states.start("call_a", "me", 300, T0 + timedelta(seconds=20), T0, async_detection=True)
    placed = state_of(store, "call_a")
    assert placed.async_detection and placed.carried == Carried(steered_at=T0)
    carried = Carried(steered_at=T0 + timedelta(seconds=1.25), quiet_since=T0 + timedelta(seconds=0.5),
                      acknowledged=False, acknowledgements_said=2, goodbye_pending=True)
    answer = Answer(key="hold:1", twiml="<Response/>", lines=[], gather_seq=0, hold_seq=1, reprompts_left=1,
                    last_prompt=[], delivered=0, carried=carried)
    store.call_states.commit("call_a", answer, T0)
    assert state_of(store, "call_a").carried == carried  # to the millisecond
    unknown = Answer(key="hold:2", twiml="<Response/>", lines=[], gather_seq=0, hold_seq=2, reprompts_left=1,
                     last_prompt=[], delivered=0, carried=replace(carried, steered_at=None))
    store.call_states.commit("call_a", unknown, T0)
    assert state_of(store, "call_a").carried.steered_at == carried.steered_at  # not known: left as it was
    store.call_states.queue_action("call_a", {"say": "one"}, T0 + timedelta(seconds=7))
    assert state_of(store, "call_a").carried.steered_at == T0 + timedelta(seconds=7)
    store.call_states.steer("call_a", T0 + timedelta(seconds=9.5))
    assert state_of(store, "call_a").carried.steered_at == T0 + timedelta(seconds=9.5)
    assert not state_of(store, "call_a").carried.acknowledged  # a steer changes nothing else


def test_a_calls_lease_is_claimed_renewed_and_released(store: Store) -> None:
    store.calls.insert(call("call_a"), T0)
    fresh = T0 + timedelta(seconds=20)
    assert store.call_states.claim("call_a", "one", fresh, T0, lambda owner: True)
    assert not store.call_states.claim("call_a", "two", fresh, T0, lambda owner: True)  # fresh and alive
    gone = store.call_states.claim("call_a", "two", fresh, T0, lambda owner: False)
    assert gone is not store.wakeups.shared  # a dead pid frees it on one machine; shared: the lease time alone
    store.call_states.claim("call_a", "two", fresh, T0 + timedelta(seconds=21), lambda owner: True)  # expired
    store.call_states.renew(["call_a"], "one", fresh + timedelta(minutes=1))  # not its owner any more
    assert state_of(store, "call_a").lease_until == fresh
    store.call_states.renew(["call_a"], "two", fresh + timedelta(minutes=1))
    assert state_of(store, "call_a").lease_until == fresh + timedelta(minutes=1)
    assert not store.call_states.claim("call_a", "one", fresh, T0 + timedelta(seconds=30), lambda owner: True)
    assert store.call_states.claim("call_a", "one", fresh, T0 + timedelta(minutes=2), lambda owner: True)  # expired
    store.call_states.release(["call_a"], "one")
    assert (state_of(store, "call_a").owner, state_of(store, "call_a").lease_until) == (None, None)


def state_of(store: Store, call_id: str) -> CallStateRecord:
    state = store.call_states.load(call_id)
    assert state is not None
    return state


def test_the_home_lease(store: Store) -> None:
    until = T0 + timedelta(seconds=20)
    assert store.leases.holder("server") is None
    assert store.leases.acquire("server", "a", 11, until, T0, lambda pid: True) is None
    assert store.leases.acquire("server", "b", 12, until, T0, lambda pid: True) == LeaseHolder("a", 11, until)
    gone = store.leases.acquire("server", "b", 12, until, T0, lambda pid: False)  # a's pid is gone
    assert gone == (LeaseHolder("a", 11, until) if store.wakeups.shared else None)  # shared: lease time alone
    assert store.leases.acquire("server", "b", 12, until, until, lambda pid: True) is None  # a's expired
    assert store.leases.holder("server") == LeaseHolder("b", 12, until)
    store.leases.release("server", "a")  # not the holder: nothing happens
    assert store.leases.holder("server") == LeaseHolder("b", 12, until)
    store.leases.release("server", "b")
    assert store.leases.holder("server") is None


def test_wakeups_reach_every_listener_of_a_shared_store(store: Store) -> None:
    """On the event loop that listens: another process's news arrives, this process's own
    (sent on whichever of its connections) does not."""
    import asyncio

    heard: list[str | None] = []

    async def scenario() -> bool:
        arrived = asyncio.Event()

        def wake(call_id: str | None) -> None:
            heard.append(call_id)
            arrived.set()

        other = _reopened(store)  # another process's store on the same database
        stop = await store.wakeups.listen(wake)
        try:
            for _ in range(3):  # this process's own news: its waiters woke in process
                await asyncio.gather(*(asyncio.to_thread(store.wakeups.notify, "call_own") for _ in range(4)))
            other.wakeups.notify("call_a")
            try:
                await asyncio.wait_for(arrived.wait(), 5)
            except TimeoutError:
                return False
            return True
        finally:
            await stop()
            other.close()

    assert asyncio.run(scenario()) is store.wakeups.shared  # one server per SQLite home: nobody else to tell
    assert heard == (["call_a"] if store.wakeups.shared else [])


def _reopened(store: Store) -> Store:
    if isinstance(store, SqliteStore):
        return SqliteStore(store.path)
    from twilio_caller.store.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    return PostgresStore(store.url)


# -- scheduled calls ---------------------------------------------------------------------


def scheduled(scheduled_id: str, due: datetime) -> NewScheduled:
    return NewScheduled(id=scheduled_id, arguments={"to": "Ann", "message": "Hi"}, to_name="Ann",
                        to_number="+13125550101", due_at=due, retry_on=["busy"], max_attempts=3,
                        spacing_minutes=5.0, when_allowed=True, detail=None)


def test_scheduled_calls_round_trip_and_move_between_states(store: Store) -> None:
    store.schedule.add(scheduled("sched_b", T0 + timedelta(hours=1)), T0)
    store.schedule.add(scheduled("sched_a", T0), T0)
    row = store.schedule.get("sched_a")
    assert row is not None
    assert (row["arguments"], row["retry_on"], row["due_at"], row["when_allowed"], row["state"],
            row["call_ids"], row["claimed_at"], row["attempts_made"]) == (
        {"to": "Ann", "message": "Hi"}, ["busy"], T0, True, "scheduled", [], None, 0)
    assert store.schedule.get("sched_none") is None
    assert [r["id"] for r in store.schedule.due(T0)] == ["sched_a"]
    assert [r["id"] for r in store.schedule.in_states(("scheduled",))] == ["sched_a", "sched_b"]
    assert store.schedule.transition("sched_a", ("scheduled",), {"state": "dialing", "claimed_at": T0}, T0)
    assert not store.schedule.transition("sched_a", ("scheduled",), {"state": "dialing"}, T0)  # once only
    store.schedule.add_attempt("sched_a", "call_1", T0)
    store.schedule.add_attempt("sched_a", None, T0)
    row = store.schedule.get("sched_a") or {}
    assert (row["state"], row["claimed_at"], row["call_ids"], row["attempts_made"]) == ("dialing", T0, ["call_1"], 2)
    assert store.schedule.count(("scheduled", "dialing")) == 2
    assert store.schedule.transition("sched_a", ("dialing",), {"state": "done", "outcome": "completed"}, T0)
    assert store.schedule.count(("scheduled", "dialing")) == 1
    assert [r["id"] for r in store.schedule.in_states(())] == ["sched_a", "sched_b"]


def test_a_call_is_read_back_in_one_read_row_state_outcomes_and_hand_over(store: Store) -> None:
    """The read-back an instance sharing the store makes before each request and tool: the row
    as `calls.get` gives it, the state as `call_states.load` gives it, the `outcome` payloads in
    their numbered order (not in the order written), the highest `seen` count."""
    import asyncio

    store.calls.insert(call("call_read"), T0)
    store.calls.insert(call("call_other"), T0)

    async def scenario() -> None:
        reader = store.reader()  # a reader belongs to the event loop that reads through it
        try:
            fresh = await reader.read_back("call_read")
            assert fresh is not None and fresh.state is None and fresh.outcomes == [] and fresh.seen == 0
            assert fresh.row == store.calls.get("call_read")
            store.call_states.start("call_read", "srv", 600, T0 + timedelta(seconds=20), T0)
            store.call_states.queue_action("call_read", {"id": "a1", "kind": "speak"}, T0)
            for number, text in ((2, "second"), (1, "first"), (3, "third")):
                store.calls.add_event("call_read", "outcome", "reply", number, {"kind": "reply", "text": text},
                                      T0, content_key=None)
            for seen in (1, 3, 2):
                store.calls.add_event("call_read", "seen", None, seen, {"seen": seen}, T0, content_key=None)
            store.calls.add_event("call_other", "outcome", "reply", 4, {"kind": "reply", "text": "elsewhere"},
                                  T0, content_key=None)
            store.calls.advance("call_read", "in-progress", {"answered_by": "human"}, T0)
            read_back = await reader.read_back("call_read")
            assert read_back is not None and read_back.state is not None
            assert read_back.row == store.calls.get("call_read") and read_back.row["status"] == "in-progress"
            assert read_back.state == store.call_states.load("call_read")
            assert read_back.state.pending_actions == [{"id": "a1", "kind": "speak"}]
            assert [payload["text"] for payload in read_back.outcomes] == ["first", "second", "third"]
            assert read_back.seen == 3
            assert await reader.read_back("call_unknown") is None
        finally:
            await reader.close()

    asyncio.run(scenario())
