from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from twilio_caller.errors import ConflictError, InternalError
from twilio_caller.store.sqlite import MIGRATIONS, Migration, SqliteStore as Store


def test_a_new_database_is_in_wal_mode_with_every_migration_recorded(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    assert store.applied_migrations() == [m.name for m in MIGRATIONS]
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    tables = {row["name"] for row in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"contacts", "calls", "turns", "events", "safety_decisions"} <= tables
    store.close()


def test_reopening_applies_only_new_migrations_in_order(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    Store(path).close()
    later = Migration("9999_extra", ("CREATE TABLE extra (x INTEGER)",))
    store = Store(path, (*MIGRATIONS, later))
    assert store.applied_migrations() == [m.name for m in MIGRATIONS] + ["9999_extra"]
    store.close()


def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    Store(path).close()
    broken = Migration("0002_broken", ("CREATE TABLE half (x INTEGER)", "CREATE TABLE nonsense ("))
    with pytest.raises(InternalError, match="cannot open the database"):
        Store(path, (*MIGRATIONS, broken))
    connection = sqlite3.connect(path)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    applied = {row[0] for row in connection.execute("SELECT name FROM schema_migrations")}
    connection.close()
    assert "half" not in tables
    assert "0002_broken" not in applied


def test_a_transaction_that_raises_writes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    with pytest.raises(RuntimeError), store.transaction() as connection:
        connection.execute(
            "INSERT INTO contacts (name, name_key, number, created_at, updated_at)"
            " VALUES ('A', 'a', '+13125550123', 'now', 'now')"
        )
        raise RuntimeError("boom")
    assert store.query("SELECT COUNT(*) FROM contacts")[0][0] == 0
    store.close()


def _add_contacts(home: str, worker: int, results: multiprocessing.Queue[str]) -> None:
    from twilio_caller.errors import ConflictError as Conflict
    from twilio_caller.runtime import Runtime

    runtime = Runtime(Path(home), environ={})
    for index in range(5):
        runtime.contacts.add(f"Worker{worker}-{index}", f"+1312555{worker:02d}{index:02d}")
    try:
        runtime.contacts.add("Shared", "+13125559999")
        results.put("added")
    except Conflict:
        results.put("conflict")
    runtime.close()


def test_several_processes_share_one_database_safely(home: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_add_contacts, args=(str(home), n, results)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert outcomes == ["added", "conflict", "conflict", "conflict"]
    store = Store(home / "twilio-caller.db")
    assert store.query("SELECT COUNT(*) FROM contacts")[0][0] == 4 * 5 + 1
    assert store.applied_migrations() == [m.name for m in MIGRATIONS]
    store.close()


def test_conflict_error_is_raised_not_a_raw_integrity_error(tmp_path: Path) -> None:
    from twilio_caller.clock import SystemClock
    from twilio_caller.contacts import ContactBook

    book = ContactBook(Store(tmp_path / "db.sqlite"), SystemClock(), "US")
    book.add("Contact1", "312-555-0101")
    with pytest.raises(ConflictError):
        book.add("Other", "+1 (312) 555-0101")


def test_only_the_sqlite_store_holds_sql() -> None:
    """The domain modules speak to the store's interfaces (store/ports.py); SQL and the
    sqlite3 driver appear only in the store: store/sql/ (the repositories both stores share),
    store/sqlite/ and store/postgres/ (issue 18)."""
    import re

    package = Path(__file__).resolve().parent.parent / "twilio_caller"
    sql = re.compile(r"\bimport sqlite3\b|\b(SELECT \S.* FROM|INSERT INTO|DELETE FROM|UPDATE \w+ SET)\b")
    outside = [
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        if not any(f"store/{backend}/" in path.as_posix() for backend in ("sql", "sqlite", "postgres"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if sql.search(line)
    ]
    assert outside == []


@pytest.mark.parametrize(("rule", "placed"), [("contact_cap", 3), ("min_gap", 1)])
def test_processes_racing_on_one_sqlite_file_place_exactly_what_the_rule_allows(
        tmp_path: Path, rule: str, placed: int) -> None:
    """Six processes reserve at one barrier: the IMMEDIATE transaction serialises them (a
    deferred BEGIN lets them read the same counts, and all but one fail to write)."""
    import postgres_support as pg

    path = tmp_path / "race.db"
    Store(path).close()  # migrated before the race
    outcomes = pg.race(pg.reserve_in_process, str(path), rule)  # fails on any process's error
    assert len([o for o in outcomes if o]) == placed
    store = Store(path)
    try:
        assert len(store.ledger.decisions(100)) == pg.PROCESSES
    finally:
        store.close()
