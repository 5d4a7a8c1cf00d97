"""The contact book in SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from twilio_caller.store.ports import Contact, ContactFields, Taken
from twilio_caller.store.sqlite._common import stamp
from twilio_caller.store.sqlite.database import Database


class SqliteContacts:
    def __init__(self, database: Database) -> None:
        self._db = database

    def all(self) -> list[Contact]:
        return [_contact(row) for row in self._db.query("SELECT * FROM contacts ORDER BY name_key")]

    def by_key(self, name_key: str) -> Contact | None:
        rows = self._db.query("SELECT * FROM contacts WHERE name_key = ?", (name_key,))
        return _contact(rows[0]) if rows else None

    def by_number(self, e164: str) -> Contact | None:
        rows = self._db.query("SELECT * FROM contacts WHERE number = ?", (e164,))
        return _contact(rows[0]) if rows else None

    def add(self, entries: Sequence[tuple[ContactFields, str]], now: datetime) -> list[Contact]:
        with self._db.transaction() as connection:
            return [_insert(connection, fields, key, stamp(now), index)
                    for index, (fields, key) in enumerate(entries)]

    def update(self, contact_id: int, fields: ContactFields, name_key: str, *, opt_in: bool,
               now: datetime) -> None:
        with self._db.transaction() as connection:
            _ensure_unique(connection, name_key, fields.number, contact_id)
            connection.execute(
                "UPDATE contacts SET name = ?, name_key = ?, number = ?, timezone = ?, voice = ?,"
                " notes = ?, opted_out_at = CASE WHEN ? THEN NULL ELSE opted_out_at END,"
                " updated_at = ? WHERE id = ?",
                (fields.name, name_key, fields.number, fields.timezone, fields.voice,
                 fields.notes, opt_in, stamp(now), contact_id),
            )

    def opt_out(self, e164: str, now: datetime) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE contacts SET opted_out_at = COALESCE(opted_out_at, ?), updated_at = ?"
                " WHERE number = ?",
                (stamp(now), stamp(now), e164),
            )

    def remove(self, contact_id: int) -> None:
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))


def _insert(connection: sqlite3.Connection, fields: ContactFields, key: str, now: str, index: int) -> Contact:
    _ensure_unique(connection, key, fields.number, None, index)
    cursor = connection.execute(
        "INSERT INTO contacts (name, name_key, number, timezone, voice, notes,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (fields.name, key, fields.number, fields.timezone, fields.voice, fields.notes, now, now),
    )
    return Contact(id=cursor.lastrowid or 0, **asdict(fields), opted_out_at=None,
                   created_at=now, updated_at=now)


def _ensure_unique(connection: sqlite3.Connection, key: str, number: str, own_id: int | None,
                   index: int = 0) -> None:
    for column, value, field in (("name_key", key, "name"), ("number", number, "number")):
        row = connection.execute(
            f"SELECT name FROM contacts WHERE {column} = ? AND id IS NOT ?", (value, own_id)
        ).fetchone()
        if row:
            raise Taken(field, row["name"], index)


def _contact(row: sqlite3.Row) -> Contact:
    return Contact(**{key: row[key] for key in row.keys() if key != "name_key"})  # noqa: SIM118
