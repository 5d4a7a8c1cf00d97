"""`store export` / `store import` (issue 18): a home's SQLite data moved into PostgreSQL and
back through the CLI, row for row; an import into a store that holds data, or of a file that
does not fit, writes nothing and says why."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

import postgres_support as pg
from twilio_caller.cli import main
from twilio_caller.store.ports import ContactFields
from twilio_caller.store.sqlite import SqliteStore

psycopg = pytest.importorskip("psycopg")
from twilio_caller.store.postgres import PostgresStore  # noqa: E402 - needs psycopg

EXIT_INVALID = EXIT_CONFLICT = 2  # ConflictError is an InvalidInputError


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_homes_data_goes_to_postgresql_and_back_row_for_row(capsys, home: Path, tmp_path: Path,
                                                               postgres_url: str, monkeypatch) -> None:
    home.mkdir(mode=0o700)
    original = SqliteStore(home / "twilio-caller.db")
    pg.fill_store(original)
    expected = original.tables.dump()
    original.close()
    assert all(expected[table] for table in expected)  # a row in every table

    code, out = run(capsys, "store", "export", str(tmp_path / "home.json"))
    assert code == 0 and "1 contacts" in out and "3 turns" in out
    assert stat.S_IMODE((tmp_path / "home.json").stat().st_mode) == 0o600  # transcripts: private

    monkeypatch.setenv("TWILIO_CALLER_DATABASE_URL", postgres_url)
    assert run(capsys, "store", "import", str(tmp_path / "home.json"))[0] == 0
    shared = PostgresStore(postgres_url)
    try:
        assert shared.tables.dump() == expected
        bob, = shared.contacts.add([(ContactFields("Bob", "+13125550102", None, None, None), "bob")], pg.RACE_NOW)
        assert bob.id == expected["contacts"][-1]["id"] + 1  # ids continue after the imported ones
        assert run(capsys, "store", "export", str(tmp_path / "shared.json"))[0] == 0
        expected_back = shared.tables.dump()
    finally:
        shared.close()

    monkeypatch.delenv("TWILIO_CALLER_DATABASE_URL")
    monkeypatch.setenv("TWILIO_CALLER_HOME", str(tmp_path / "other-home"))
    assert run(capsys, "store", "import", str(tmp_path / "shared.json"))[0] == 0
    back = SqliteStore(tmp_path / "other-home" / "twilio-caller.db")
    try:
        assert back.tables.dump() == expected_back
        assert [c.name for c in back.contacts.all()] == ["Ann", "Bob"]
    finally:
        back.close()


def test_an_import_into_a_store_with_data_writes_nothing(capsys, tmp_path: Path, postgres_url: str,
                                                         monkeypatch) -> None:
    source = SqliteStore(tmp_path / "source.db")
    pg.fill_store(source)
    (tmp_path / "copy.json").write_text(json.dumps(
        {"format": "twilio-caller-store", "version": 1, "tables": source.tables.dump()}))
    source.close()
    shared = PostgresStore(postgres_url)
    try:
        shared.contacts.add([(ContactFields("Zed", "+13125550199", None, None, None), "zed")], pg.RACE_NOW)
        before = shared.tables.dump()
        monkeypatch.setenv("TWILIO_CALLER_DATABASE_URL", postgres_url)
        code, out = run(capsys, "store", "import", str(tmp_path / "copy.json"))
        assert code == EXIT_CONFLICT and "already holds data (contacts: 1 rows)" in out
        assert shared.tables.dump() == before
    finally:
        shared.close()


@pytest.mark.parametrize(("content", "says"), [
    ("not json", "is not a store export"),
    ('{"format": "something-else", "tables": {}}', "is not a store export"),
    ('{"format": "twilio-caller-store", "version": 9, "tables": {}}', "version 9"),
    ('{"format": "twilio-caller-store", "version": 1, "tables": {"users": []}}', "does not know: users"),
    ('{"format": "twilio-caller-store", "version": 1, "tables": {"contacts": [{"id": 1, "name": "A",'
     ' "name_key": "a", "number": "+13125550101", "created_at": "x", "updated_at": "x",'
     ' "id) VALUES (1); DROP TABLE calls; --": 1}]}}', "no column 'id) VALUES (1); DROP TABLE calls; --'"),
    ('{"format": "twilio-caller-store", "version": 1, "tables": {"turns": [{"id": 1, "call_id": "nope",'
     ' "speaker": "callee", "text": "hi", "at": "x"}]}}', "turns:"),
])
def test_a_file_that_does_not_fit_is_refused_and_nothing_is_written(capsys, tmp_path: Path, postgres_url: str,
                                                                    monkeypatch, content: str, says: str) -> None:
    (tmp_path / "bad.json").write_text(content)
    monkeypatch.setenv("TWILIO_CALLER_DATABASE_URL", postgres_url)
    code, out = run(capsys, "store", "import", str(tmp_path / "bad.json"))
    assert code == EXIT_INVALID and says in out
    shared = PostgresStore(postgres_url)
    try:
        assert not any(shared.tables.dump().values())
    finally:
        shared.close()
