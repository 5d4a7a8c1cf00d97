"""Which store a home uses: the PostgreSQL database `store.url` names, else the SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twilio_caller.errors import ConfigError
from twilio_caller.store.ports import Store


def open_store(path: Path, url: str | None = None) -> Store:
    """The store of a home: the PostgreSQL database at `url` when one is given, else its
    SQLite database file; opened and migrated."""
    if url:
        store: Store = _postgres().PostgresStore(url)
        return store
    from twilio_caller.store.sqlite import SqliteStore

    return SqliteStore(path)


def migrate_store(path: Path, url: str | None = None) -> tuple[str, list[str]]:
    """`store migrate`: apply the named migrations the store (as `open_store` picks it) lacks;
    the store as it may be shown (a URL without its password) and the names applied."""
    if url:
        postgres = _postgres()
        database = postgres.PgDatabase(url, migrations=())
        shown = f"PostgreSQL {postgres.redact(url)}"
    else:
        from twilio_caller.store.sqlite.database import Database

        database = Database(path, migrations=())
        shown = f"SQLite {path}"
    try:
        return shown, database.migrate()
    finally:
        database.close()


def _postgres() -> Any:
    try:
        from twilio_caller.store import postgres
    except ImportError as exc:
        raise ConfigError(
            f"store.url names a PostgreSQL database but its driver is not installed ({exc}): "
            "install the postgres extra (pip install 'twilio-caller[postgres]': psycopg[binary] and psycopg-pool), "
            "or unset store.url / TWILIO_CALLER_DATABASE_URL to use the SQLite file in the home"
        ) from exc
    return postgres
