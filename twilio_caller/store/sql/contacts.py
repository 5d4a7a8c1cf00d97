"""The contact book, for both stores. Adds and updates hold the book's lock (PostgreSQL; on
SQLite the write transaction excludes every other writer), so two processes writing the same
name or number get `Taken`, never a constraint error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from twilio_caller.store.ports import Contact, ContactFields, Taken
from twilio_caller.store.sql.dialect import Lock, SqlDatabase, stamp


class SqlContacts:
    def __init__(self, database: SqlDatabase) -> None:
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
            self._db.dialect.lock(connection, Lock.CONTACT_BOOK, None)
            return [_insert(connection, fields, key, stamp(now), index)
                    for index, (fields, key) in enumerate(entries)]

    def update(self, contact_id: int, fields: ContactFields, name_key: str, *, opt_in: bool,
               now: datetime) -> None:
        with self._db.transaction() as connection:
            self._db.dialect.lock(connection, Lock.CONTACT_BOOK, None)
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


def _insert(connection: Any, fields: ContactFields, key: str, now: str, index: int) -> Contact:
    _ensure_unique(connection, key, fields.number, None, index)
    row = connection.execute(
        "INSERT INTO contacts (name, name_key, number, timezone, voice, notes,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (fields.name, key, fields.number, fields.timezone, fields.voice, fields.notes, now, now),
    ).fetchone()
    return Contact(id=int(row["id"]), **asdict(fields), opted_out_at=None, created_at=now, updated_at=now)


def _ensure_unique(connection: Any, key: str, number: str, own_id: int | None, index: int = 0) -> None:
    for column, value, field in (("name_key", key, "name"), ("number", number, "number")):
        row = connection.execute(
            f"SELECT name FROM contacts WHERE {column} = ? AND id IS DISTINCT FROM CAST(? AS BIGINT)",  # noqa: S608
            (value, own_id),
        ).fetchone()
        if row:
            raise Taken(field, row["name"], index)


def _contact(row: Any) -> Contact:
    return Contact(**{key: row[key] for key in row.keys() if key != "name_key"})  # noqa: SIM118 - sqlite3.Row too
