"""Every bad input gets a clear answer: the exit code of its kind and a message that names
what to fix — never a traceback, never a half-written record, never a call placed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from twilio_caller.cli import main
from twilio_caller.errors import InvalidInputError
from twilio_caller.runtime import Runtime
from twilio_caller.store.sqlite import SqliteStore as Store


def run(capsys, *arguments: str) -> tuple[int, dict]:
    code = main([*arguments, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def book(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text('safety: {calling_hours: "00:00-24:00", callee_hours: null}\n')
    runtime = Runtime(home, environ={})
    runtime.contacts.add("Contact1", "312-555-0101")
    runtime.close()
    return home


CASES = [
    # (arguments, exit code, field or None, words the message must hold)
    (["tool", "call", "--args", '{"to": "Contact1", "message": "hi", "timeout_seconds": NaN}'],
     2, "timeout_seconds", "nan is not a finite number"),
    (["tool", "call", "--args", '{"to": "Contact1", "message": "hi", "timeout_seconds": Infinity}'],
     2, "timeout_seconds", "inf is not a finite number"),
    (["tool", "say", "--args", '{"call_id": "call_1", "message": "hi", "timeout_seconds": -Infinity}'],
     2, "timeout_seconds", "-inf is not a finite number"),
    (["call", "Contact1", "hi", "--timeout", "nan"], 2, "--timeout", "--timeout"),
    (["call", "Contact1", "I'll be\x00 late", "--dry-run"], 2, "message", "message: contains control characters"),
    (["call", "Contact1", "hi", "--closing", "bye\x07", "--dry-run"], 2, "closing", "closing: contains control"),
    (["tool", "call", "--args", '{"to": "Contact1", "message": "a\\u001bb", "dry_run": true}'],
     2, "message", "control characters"),
    (["add", "Con\x07tact2", "312-555-0102"], 2, "name", "control characters"),
    (["add", "Contact2", "312-555-0102", "--notes", "gate code \x00 1234"], 2, "notes", "notes: contains control"),
    (["add", "Contact2", "312-555-0102", "--timezone", "Europe/\x00Paris"], 2, "timezone", "timezone: contains"),
    (["add", "Premium", "1-900-555-0100"], 2, "number", "premium-rate number"),
    (["add", "Emergency", "911"], 2, "number", "emergency number"),
    (["tool", "add_contact", "--args", '{"name": "Pager", "number": "+1 900 555 0101"}'],
     2, "number", "never dialled"),
    (["calls", "purge"], 2, None, "--older-than DAYS, --contact NAME"),
    (["calls", "purge", "--older-than", "-1"], 2, "--older-than", "--older-than"),
]


@pytest.mark.parametrize(("arguments", "code", "field", "words"), CASES,
                         ids=[" ".join(case[0])[:60] for case in CASES])
def test_bad_input_gets_its_exit_code_and_a_message_naming_the_fix(
        book: Path, capsys, arguments: list[str], code: int, field: str | None, words: str) -> None:
    before = _rows(book)
    exit_code, document = run(capsys, *arguments)
    assert exit_code == code, document
    error = document["error"]
    assert words in error["message"] and "Traceback" not in error["message"]
    assert error.get("field") == field
    assert "older_than_days" not in error["message"]
    assert _rows(book) == before  # nothing recorded: no contact, no call, no safety decision


def _rows(home: Path) -> tuple[int, int, int]:
    connection = sqlite3.connect(home / "twilio-caller.db")
    try:
        return tuple(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # type: ignore[return-value]
                     for table in ("contacts", "calls", "safety_decisions"))
    finally:
        connection.close()


def test_the_global_json_flag_works_like_the_command_one(book: Path, capsys) -> None:
    assert main(["--json", "contacts"]) == 0
    assert json.loads(capsys.readouterr().out)["contacts"][0]["name"] == "Contact1"
    assert main(["--json", "call", "Nobody", "hi", "--dry-run"]) == 6
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "not_found"


def test_calls_of_a_removed_contact_are_still_found(live_server, capsys) -> None:
    placed = live_server.tool("call", to="Contact1", message="Hello")
    live_server.tool("remove_contact", name="Contact1")
    found = live_server.tool("list_calls", contact="contact1")["calls"]
    assert [call["call_id"] for call in found] == [placed["call_id"]]
    assert live_server.tool("purge_calls", contact="Contact1")["purged"]["turns"] > 0
    with pytest.raises(Exception, match="no contact named 'Nobody'"):
        live_server.tool("list_calls", contact="Nobody")


def test_control_characters_in_live_call_text_change_nothing(live_server) -> None:
    dialled = len(live_server.simulator.calls)
    with pytest.raises(InvalidInputError) as refused:
        live_server.tool("call", to="Contact1", message="Hi\x00there")
    assert refused.value.field == "message"
    assert len(live_server.simulator.calls) == dialled
    assert live_server.runtime.store.query("SELECT COUNT(*) FROM calls")[0][0] == 0
    live_server.script("Contact2", replies=[{"say": "Hi"}, {"say": "Sure"}])
    placed = live_server.tool("call", to="Contact2", message="Hello", keep_open=True)
    before = live_server.tool("call_status", call_id=placed["call_id"])["transcript"]
    for tool, arguments in (("say", {"message": "bell\x07"}), ("hangup", {"message": "bye\x00"})):
        with pytest.raises(InvalidInputError, match="control characters"):
            live_server.tool(tool, call_id=placed["call_id"], **arguments)
    assert live_server.tool("call_status", call_id=placed["call_id"])["transcript"] == before
    assert live_server.tool("hangup", call_id=placed["call_id"])["ended"]


# -- database and disk problems: exit 5, the file's path, what to do -------------------------

def _corrupt(db: Path) -> None:
    db.write_bytes(b"this is not a database, it is a shopping list\n" * 200)


def _emptied_with_backup(db: Path) -> None:
    (db.parent / (db.name + ".bak")).write_bytes(db.read_bytes())
    db.write_bytes(b"")


def _truncated(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _checkpointed(home: Path) -> Path:
    db = home / "twilio-caller.db"
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to damage
    connection.close()
    return db


DISK_CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("corrupt", _corrupt, "move it aside"),
    ("zero-length while a backup exists", _emptied_with_backup, "Restore it from the backup"),
    ("truncated", _truncated, "restore it from a backup"),
]


@pytest.mark.parametrize(("what", "damage", "fix"), DISK_CASES, ids=[case[0] for case in DISK_CASES])
def test_a_damaged_database_is_a_config_error_with_its_path_and_fix(
        book: Path, capsys, what: str, damage: Callable[[Path], None], fix: str) -> None:
    db = _checkpointed(book)
    damage(db)
    for arguments in (["contacts"], ["add", "Contact2", "312-555-0102"], ["call", "Contact1", "hi", "--dry-run"]):
        code, document = run(capsys, *arguments)
        assert code == 5, document
        assert str(db) in document["error"]["message"] and fix in document["error"]["message"]


def test_a_new_empty_database_file_is_simply_a_new_database(home: Path, capsys) -> None:
    home.mkdir(parents=True)
    (home / "twilio-caller.db").write_bytes(b"")
    assert run(capsys, "contacts")[0] == 0


def test_a_locked_database_is_waited_on_briefly_then_named(book: Path, capsys) -> None:
    import time

    holder = sqlite3.connect(book / "twilio-caller.db", isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("DELETE FROM contacts")
    try:
        began = time.monotonic()
        code, document = run(capsys, "contacts")
        assert time.monotonic() - began < 10
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 5 and "database is locked" in document["error"]["message"]
    assert "close that program" in document["error"]["message"]


def test_a_full_disk_is_named_and_the_write_leaves_nothing(tmp_path: Path) -> None:
    from twilio_caller.contacts import ContactBook
    from twilio_caller.clock import SystemClock
    from twilio_caller.errors import ConfigError

    store = Store(tmp_path / "twilio-caller.db")
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages}")  # as if the disk had no room for one more page
    book = ContactBook(store, SystemClock(), "US")
    with pytest.raises(ConfigError, match="free some space") as full:
        for n in range(200):
            book.add(f"Contact{n} " + "x" * 40, f"+1312555{n:04d}", notes="n" * 2000)
    assert str(tmp_path / "twilio-caller.db") in full.value.message
    store.close()
