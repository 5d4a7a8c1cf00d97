"""The PostgreSQL store (issue 18) against a real PostgreSQL: reservations raced from separate
processes never pass a cap, migrations applied once when processes open a fresh database
together, rows that read exactly as the SQLite store's, selection by store.url or
TWILIO_CALLER_DATABASE_URL, doctor's database check, and a simulated call end to end on it.
The repository contracts themselves run on both stores in test_repositories.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import postgres_support as pg
from twilio_caller import doctor
from twilio_caller.errors import ConfigError
from twilio_caller.runtime import Runtime
from twilio_caller.store import open_store
from twilio_caller.store.ports import CallFilter, ContactFields
from twilio_caller.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from twilio_caller.store.sqlite import SqliteStore

psycopg = pytest.importorskip("psycopg")
from twilio_caller.store.postgres import PostgresStore  # noqa: E402 - needs psycopg
from twilio_caller.store.postgres.read_back import PgReader  # noqa: E402 - needs psycopg

PROCESSES = pg.PROCESSES


@pytest.mark.parametrize(("rule", "placed"), [("contact_cap", 3), ("concurrency", 2), ("min_gap", 1)])
def test_processes_racing_to_reserve_place_exactly_what_the_rule_allows(postgres_url: str, rule: str,
                                                                        placed: int) -> None:
    store = PostgresStore(postgres_url)  # migrated before the race
    try:
        outcomes = pg.race(pg.reserve_in_process, postgres_url, rule)
        assert len([call_id for call_id in outcomes if call_id]) == placed
        assert len(store.calls.find(CallFilter(), 100)) == placed
        decisions = store.ledger.decisions(100)
        assert len(decisions) == PROCESSES  # every decision audited, allowed or not
        assert sorted(d["rule"] for d in decisions if not d["allowed"]) == [rule] * (PROCESSES - placed)
    finally:
        store.close()


def test_processes_opening_a_fresh_database_together_apply_each_migration_once(postgres_url: str) -> None:
    outcomes = pg.race(pg.open_in_process, postgres_url)
    names = [migration.name for migration in SQLITE_MIGRATIONS]  # the same named steps as SQLite's
    assert outcomes == [names] * PROCESSES
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT COUNT(*) FROM applied_migrations").fetchone()[0] == len(names)


def test_rows_read_exactly_as_the_sqlite_store_gives_them(postgres_url: str, tmp_path: Path) -> None:
    sqlite, postgres = SqliteStore(tmp_path / "twilio-caller.db"), PostgresStore(postgres_url)
    try:
        for store in (sqlite, postgres):
            pg.fill_store(store)
        assert postgres.contacts.all() == sqlite.contacts.all()
        assert postgres.contacts.all()[0].opted_out_at == "2026-06-10T12:01:00+00:00"
        assert postgres.calls.get("call_1") == sqlite.calls.get("call_1")
        assert postgres.calls.get("call_1")["ended_at"] == "2026-06-10T12:00:30+00:00"  # type: ignore[index]
        assert postgres.calls.turns("call_1") == sqlite.calls.turns("call_1")
        assert postgres.calls.event_payloads("call_1", "status") == sqlite.calls.event_payloads("call_1", "status")
        assert postgres.ledger.decisions(10) == sqlite.ledger.decisions(10)
        assert postgres.call_states.load("call_1") == sqlite.call_states.load("call_1")
        assert postgres.schedule.in_states([]) == sqlite.schedule.in_states([])
    finally:
        sqlite.close()
        postgres.close()


def test_a_database_that_cannot_be_reached_is_a_clear_error_that_hides_the_password() -> None:
    with pytest.raises(ConfigError) as error:
        PostgresStore("postgresql://caller:s3cret-pass@127.0.0.1:1/nowhere")
    assert "s3cret-pass" not in error.value.message
    assert "postgresql://caller:****@127.0.0.1:1/nowhere" in error.value.message
    assert "TWILIO_CALLER_DATABASE_URL" in error.value.message


def test_the_environment_variable_selects_postgresql_and_the_home_gets_no_sqlite_file(
        postgres_url: str, home: Path) -> None:
    rt = Runtime(home, environ={"TWILIO_CALLER_DATABASE_URL": postgres_url})
    try:
        assert isinstance(rt.store, PostgresStore)
        rt.contacts.add("Ann", "+13125550101", "America/Chicago")
    finally:
        rt.close()
    assert not (home / "twilio-caller.db").exists()
    reopened = open_store(home / "twilio-caller.db", postgres_url)
    try:
        assert [contact.name for contact in reopened.contacts.all()] == ["Ann"]
    finally:
        reopened.close()


def test_without_a_url_the_home_keeps_its_sqlite_file(home: Path) -> None:
    rt = Runtime(home, environ={})
    try:
        assert isinstance(rt.store, SqliteStore)
    finally:
        rt.close()
    assert (home / "twilio-caller.db").is_file()


def test_a_url_that_is_not_postgresql_is_refused_by_the_config(home: Path, write_config) -> None:
    write_config("store:\n  url: mysql://root@127.0.0.1/db\n")
    rt = Runtime(home, environ={})
    with pytest.raises(ConfigError) as error:
        _ = rt.settings
    assert "store.url" in error.value.message and "root@" not in error.value.message  # a secret, not shown


def _database_check(home: Path, url: str) -> dict:
    rt = Runtime(home, environ={"TWILIO_CALLER_DATABASE_URL": url})
    try:
        return {c["name"]: c for c in doctor.run(rt, online=False)["checks"]}["database"]
    finally:
        rt.close()


def test_doctor_checks_the_database_is_reachable_and_migrated(postgres_url: str, home: Path) -> None:
    empty = _database_check(home, postgres_url)
    assert empty["ok"] is False and "not migrated (pending: 0001_initial" in empty["detail"]
    PostgresStore(postgres_url).close()
    assert _database_check(home, postgres_url)["ok"] is True
    unreachable = _database_check(home, "postgresql://caller:pw-secret@127.0.0.1:1/nowhere")
    assert unreachable["ok"] is False and "pw-secret" not in str(unreachable)
    assert unreachable["fix"] and "store.url" in unreachable["fix"]


def test_a_simulated_call_end_to_end_on_postgresql(postgres_url: str, home: Path) -> None:
    from conftest import LiveServer

    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=1.5,
                        extra_config=f"store:\n  url: \"{postgres_url}\"\n")
    server.thread.start()
    try:
        server.script("Contact2", replies=[{"say": "Sure, see you at eight", "confidence": 0.94}])
        result = server.tool("call", to="Contact2", message="Dinner at eight?", interactive=True)
        assert result["reply"]["text"] == "Sure, see you at eight"
        final = server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
        assert final["status"] == "completed"
    finally:
        server.thread.stop()
        server.runtime.close()
    assert not (home / "twilio-caller.db").exists()  # everything went to PostgreSQL
    store = PostgresStore(postgres_url)
    try:
        row = store.calls.get(result["call_id"])
        assert row is not None and row["status"] == "completed" and row["twilio_sid"] == final["twilio_sid"]
        assert ("callee", "Sure, see you at eight") in [(t["speaker"], t["text"]) for t in store.calls.turns(row["id"])]
    finally:
        store.close()


def test_a_lost_connection_is_opened_again(postgres_url: str) -> None:
    store = PostgresStore(postgres_url + "&application_name=store_under_test")
    try:
        store.contacts.add([(ContactFields("Ann", "+13125550101", None, None, None), "ann")], pg.RACE_NOW)
        _end_the_stores_session(postgres_url)
        assert [contact.name for contact in store.contacts.all()] == ["Ann"]  # a read asks again
        _end_the_stores_session(postgres_url)
        store.contacts.add([(ContactFields("Bob", "+13125550102", None, None, None), "bob")], pg.RACE_NOW)
        assert [contact.name for contact in store.contacts.all()] == ["Ann", "Bob"]
    finally:
        store.close()


def _end_the_stores_session(url: str) -> None:
    """The server ends the store's sessions — every connection of its pool (as a restart or an
    idle timeout would)."""
    with psycopg.connect(url, autocommit=True) as admin:
        ended = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
                              " datname = current_database() AND application_name = 'store_under_test'").fetchall()
    assert ended and all(row == (True,) for row in ended)


def test_a_server_holding_a_home_on_postgresql_is_never_doubled(postgres_url: str, home: Path, monkeypatch) -> None:
    """The client's check for a running but unreachable server reads the home's lease where the
    home keeps it — in PostgreSQL when store.url names it — and refuses to start a second."""
    import os

    from twilio_caller.call_state import HomeLease, home_lease
    from twilio_caller.errors import ServerUnavailableError
    from twilio_caller.server.client import ensure_server

    monkeypatch.setenv("TWILIO_CALLER_DATABASE_URL", postgres_url)
    rt = Runtime(home, environ={"TWILIO_CALLER_DATABASE_URL": postgres_url})
    try:
        assert HomeLease(rt.store, rt.clock, home_lease(home)).acquire("srv_elsewhere", os.getpid()) is None
    finally:
        rt.close()
    with pytest.raises(ServerUnavailableError, match=f"pid {os.getpid()}"):
        ensure_server(home, simulate=True)
    assert not (home / "twilio-caller.db").exists()


def test_a_store_whose_connections_are_all_busy_says_so_instead_of_hanging(postgres_url: str) -> None:
    """Every connection of the pool taken (here: the one, held by a transaction) — the next store
    call gets a clear error naming what to look at after the pool's timeout, not a wait without
    end; the connection given back serves again."""
    store = PostgresStore(postgres_url, pool_size=1, pool_timeout=0.3)
    try:
        busy = r"all 1 of this process's connections stayed busy.*pg_stat_activity"
        with store.transaction(), pytest.raises(ConfigError, match=busy):
            store.contacts.all()
        assert store.contacts.all() == []
    finally:
        store.close()


def _calls_locked_by_another_session(url: str):
    """A session of its own holding the calls table locked (reads of it wait), till rollback."""
    locker = psycopg.connect(url, autocommit=True)
    locker.execute("BEGIN")
    locker.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
    return locker


def _waiting_on_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as probe:
        return bool(probe.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND database ="
                                  " (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()[0])


def _read_back_then_close(store: PostgresStore, scenario: Callable[[PgReader], Awaitable[None]]) -> None:
    """`scenario` with the store's async reader (the server's), on an event loop of its own;
    then the reader and the store are closed, whatever happened."""
    import asyncio

    async def with_reader() -> None:
        reader = store.reader()
        try:
            await scenario(reader)
        finally:
            await reader.close()

    try:
        asyncio.run(with_reader())
    finally:
        store.close()


def test_the_servers_read_back_reports_a_pool_with_no_free_connection_and_goes_on(postgres_url: str) -> None:
    """The async read-back (the server's event loop) on a pool of one: while that connection
    waits on a lock another session holds, a second read-back is a clear error after the pool's
    timeout — not a hang; once the lock is released the waiting one completes."""
    import asyncio

    from polling import eventually
    from twilio_caller.store.ports import NewCall

    store = PostgresStore(postgres_url, pool_size=1, pool_timeout=0.3)
    store.calls.insert(NewCall(id="call_busy", token="t", to_number="+13125550101", mode="notify"), pg.RACE_NOW)

    async def scenario(reader: PgReader) -> None:
        await reader.read_back("call_busy")  # its one connection is open
        locker = _calls_locked_by_another_session(postgres_url)
        try:
            first = asyncio.ensure_future(reader.read_back("call_busy"))
            assert await asyncio.to_thread(eventually, lambda: _waiting_on_a_lock(postgres_url))
            with pytest.raises(ConfigError, match="all 1 of this process's connections stayed busy"):
                await reader.read_back("call_busy")
            assert not first.done()
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        found = await asyncio.wait_for(first, 30)
        assert found is not None and found.row["id"] == "call_busy"

    _read_back_then_close(store, scenario)


def test_the_servers_read_back_survives_lost_connections(postgres_url: str) -> None:
    """Every session of the store ended by the server (a restart, an idle timeout): the next
    read-back is asked again on a new connection, and answers."""
    import asyncio

    from twilio_caller.store.ports import NewCall

    store = PostgresStore(postgres_url + "&application_name=store_under_test")
    store.calls.insert(NewCall(id="call_lost", token="t", to_number="+13125550101", mode="notify"), pg.RACE_NOW)

    async def scenario(reader: PgReader) -> None:
        assert await reader.read_back("call_lost") is not None
        await asyncio.to_thread(_end_the_stores_session, postgres_url)
        again = await reader.read_back("call_lost")
        assert again is not None and again.row["id"] == "call_lost"

    _read_back_then_close(store, scenario)
