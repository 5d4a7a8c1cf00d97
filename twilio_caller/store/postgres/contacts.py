"""The contact book in PostgreSQL. Adds and updates hold the book's advisory lock, so two
processes writing the same name or number get `Taken`, never a constraint error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from twilio_caller.store.ports import Contact, ContactFields, Taken
from twilio_caller.store.postgres._common import stamp
from twilio_caller.store.postgres.database import LOCK_CONTACT_BOOK, Connection, PgDatabase, lock


class PgContacts:
    def __init__(self, database: PgDatabase) -> None:
        self._db = database

    def all(self) -> list[Contact]:
        return [_contact(row) for row in self._db.query("SELECT * FROM contacts ORDER BY name_key")]

    def by_key(self, name_key: str) -> Contact | None:
        rows = self._db.query("SELECT * FROM contacts WHERE name_key = %s", (name_key,))
        return _contact(rows[0]) if rows else None

    def by_number(self, e164: str) -> Contact | None:
        rows = self._db.query("SELECT * FROM contacts WHERE number = %s", (e164,))
        return _contact(rows[0]) if rows else None

    def add(self, entries: Sequence[tuple[ContactFields, str]], now: datetime) -> list[Contact]:
        with self._db.transaction() as connection:
            lock(connection, LOCK_CONTACT_BOOK)
            return [_insert(connection, fields, key, stamp(now), index)
                    for index, (fields, key) in enumerate(entries)]

    def update(self, contact_id: int, fields: ContactFields, name_key: str, *, opt_in: bool,
               now: datetime) -> None:
        with self._db.transaction() as connection:
            lock(connection, LOCK_CONTACT_BOOK)
            _ensure_unique(connection, name_key, fields.number, contact_id)
            connection.execute(
                "UPDATE contacts SET name = %s, name_key = %s, number = %s, timezone = %s, voice = %s,"
                " notes = %s, opted_out_at = CASE WHEN %s THEN NULL ELSE opted_out_at END,"
                " updated_at = %s WHERE id = %s",
                (fields.name, name_key, fields.number, fields.timezone, fields.voice,
                 fields.notes, opt_in, stamp(now), contact_id),
            )

    def opt_out(self, e164: str, now: datetime) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE contacts SET opted_out_at = COALESCE(opted_out_at, %s), updated_at = %s"
                " WHERE number = %s",
                (stamp(now), stamp(now), e164),
            )

    def remove(self, contact_id: int) -> None:
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM contacts WHERE id = %s", (contact_id,))


def _insert(connection: Connection, fields: ContactFields, key: str, now: str, index: int) -> Contact:
    _ensure_unique(connection, key, fields.number, None, index)
    row = connection.execute(
        "INSERT INTO contacts (name, name_key, number, timezone, voice, notes,"
        " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (fields.name, key, fields.number, fields.timezone, fields.voice, fields.notes, now, now),
    ).fetchone()
    assert row is not None  # noqa: S101 - INSERT … RETURNING gives its row
    return Contact(id=int(row["id"]), **asdict(fields), opted_out_at=None, created_at=now, updated_at=now)


def _ensure_unique(connection: Connection, key: str, number: str, own_id: int | None,
                   index: int = 0) -> None:
    for column, value, field in (("name_key", key, "name"), ("number", number, "number")):
        row = connection.execute(
            f"SELECT name FROM contacts WHERE {column} = %s AND id IS DISTINCT FROM %s::bigint",  # noqa: S608
            (value, own_id),
        ).fetchone()
        if row:
            raise Taken(field, row["name"], index)


def _contact(row: dict[str, Any]) -> Contact:
    return Contact(**{key: value for key, value in row.items() if key != "name_key"})
