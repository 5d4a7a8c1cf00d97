"""Which store a home uses: the PostgreSQL database `store.url` names, else the SQLite file."""

from __future__ import annotations

from pathlib import Path

from twilio_caller.errors import ConfigError
from twilio_caller.store.ports import Store


def open_store(path: Path, url: str | None = None) -> Store:
    """The store of a home: the PostgreSQL database at `url` when one is given, else its
    SQLite database file; opened and migrated."""
    if url:
        return _open_postgres(url)
    from twilio_caller.store.sqlite import SqliteStore

    return SqliteStore(path)


def _open_postgres(url: str) -> Store:
    try:
        from twilio_caller.store.postgres import PostgresStore
    except ImportError as exc:
        raise ConfigError(
            f"store.url names a PostgreSQL database but its driver is not installed ({exc}): "
            "install the postgres extra (pip install 'twilio-caller[postgres]', i.e. psycopg[binary]), "
            "or unset store.url / TWILIO_CALLER_DATABASE_URL to use the SQLite file in the home"
        ) from exc
    return PostgresStore(url)
