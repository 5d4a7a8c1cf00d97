"""`store migrate` (issue 18): the named migrations a store lacks are applied and named, a
second run says it is up to date and writes nothing, on the home's SQLite file and on
PostgreSQL (the configured store or `--url`); a bad URL changes nothing; `doctor` migrates
nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from twilio_caller.cli import main
from twilio_caller.store.sqlite import MIGRATIONS, SqliteStore

EXIT_INVALID = 2
EXIT_CONFIG = 5
NAMES = [migration.name for migration in MIGRATIONS]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def sqlite_applied(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [name for name, in connection.execute("SELECT name FROM schema_migrations ORDER BY name")]


def test_a_new_home_gets_every_step_then_is_up_to_date(capsys, home: Path) -> None:
    code, result = run_json(capsys, "store", "migrate")
    assert code == 0 and result == {"store": f"SQLite {home / 'twilio-caller.db'}", "applied": NAMES}
    assert sqlite_applied(home / "twilio-caller.db") == NAMES

    assert main(["store", "migrate"]) == 0
    assert capsys.readouterr().out.strip() == f"SQLite {home / 'twilio-caller.db'}: up to date"


def test_an_older_sqlite_store_gets_only_the_steps_it_lacks(capsys, home: Path) -> None:
    home.mkdir(mode=0o700)
    SqliteStore(home / "twilio-caller.db", MIGRATIONS[:1]).close()
    assert main(["store", "migrate"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"SQLite {home / 'twilio-caller.db'}: applied " + ", ".join(NAMES[1:])
    assert sqlite_applied(home / "twilio-caller.db") == NAMES


@pytest.mark.parametrize("argv, message", [
    (["store", "migrate", "--url", "mysql://db/x"], "needs a PostgreSQL URL"),
    (["store", "migrate", "extra.json"], "takes no file"),
    (["store", "export"], "needs a file"),
    (["store", "export", "x.json", "--url", "postgresql://db/x"], "--url is for `store migrate`"),
])
def test_bad_arguments_are_refused_and_create_nothing(capsys, home: Path, argv: list[str], message: str) -> None:
    assert main(argv) == EXIT_INVALID
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert not (home / "twilio-caller.db").exists()


def test_postgresql_by_url_and_by_configuration(capsys, home: Path, postgres_url: str, monkeypatch) -> None:
    psycopg = pytest.importorskip("psycopg")
    code, result = run_json(capsys, "store", "migrate", "--url", postgres_url)
    assert code == 0 and result["applied"] == NAMES and result["store"].startswith("PostgreSQL postgresql://")
    with psycopg.connect(postgres_url) as connection:
        applied = [name for name, in connection.execute("SELECT name FROM applied_migrations ORDER BY name")]
    assert applied == NAMES
    assert not (home / "twilio-caller.db").exists()  # the home's SQLite file was not the store

    monkeypatch.setenv("TWILIO_CALLER_DATABASE_URL", postgres_url)
    code, result = run_json(capsys, "store", "migrate")
    assert code == 0 and result["applied"] == []


def test_doctor_migrates_nothing_and_store_migrate_fixes_what_it_reports(capsys, home: Path, postgres_url: str,
                                                                      monkeypatch) -> None:
    psycopg = pytest.importorskip("psycopg")
    monkeypatch.setenv("TWILIO_CALLER_DATABASE_URL", postgres_url)
    main(["doctor", "--json"])
    capsys.readouterr()
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT to_regclass('applied_migrations')").fetchone() == (None,)
    code, result = run_json(capsys, "store", "migrate")
    assert code == 0 and result["applied"] == NAMES


def test_an_unreachable_database_is_a_config_error_without_the_password(capsys, home: Path) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://someone:s3cret-pass@127.0.0.1:1/nowhere"
    assert main(["store", "migrate", "--url", url]) == EXIT_CONFIG
    captured = capsys.readouterr()
    assert "cannot be used" in captured.err and "s3cret-pass" not in captured.out + captured.err
