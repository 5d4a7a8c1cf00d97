"""What a backend tells the shared repositories about itself (`Dialect`), what they need of
its database (`SqlDatabase`), and the pieces of SQL they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import IntEnum
from typing import Any, Protocol

from twilio_caller.call_status import LIVE, TERMINAL


class Lock(IntEnum):
    """What a writer locks on PostgreSQL (the first key of pg_advisory_xact_lock(int, int));
    on SQLite every write transaction already holds the one database write lock."""

    MIGRATIONS = 0x7C_0001
    ACCOUNT = 0x7C_0002
    CONTACT = 0x7C_0003
    CALL = 0x7C_0004
    LEASE = 0x7C_0005
    CONTACT_BOOK = 0x7C_0006


Locker = Callable[[Any, Lock, "str | int | None"], None]


def no_lock(connection: Any, kind: Lock, subject: str | int | None = None) -> None:
    """SQLite: BEGIN IMMEDIATE took the database's write lock; nothing finer is needed."""


@dataclass(frozen=True)
class Dialect:
    name: str
    insertion_order: str
    """The column that orders rows by insertion (a tie-break within one second)."""
    for_update: str
    """What a SELECT inside a write adds to lock the rows it reads ('' when the transaction
    already excludes every other writer)."""
    lock: Locker
    """Takes a transaction-level lock on (kind, subject) inside a write transaction."""
    json_pairs: str
    """An aggregate over the rows of a subquery: a JSON array (as text, '[]' for no rows) of
    `[first, second]` pairs; `.format(first, second)` gives the expression."""
    one_machine: bool
    """Every process on the database runs on this machine (SQLite's file in a home): a lease
    holder's pid says whether it still runs. False (PostgreSQL, shared by machines): the lease
    time alone decides."""


class SqlDatabase(Protocol):
    """What the shared repositories use of a backend's database."""

    @property
    def dialect(self) -> Dialect: ...

    def transaction(self) -> AbstractContextManager[Any]: ...

    def query(self, sql: str, parameters: Sequence[object] = ()) -> Sequence[Any]: ...


LIVE_STATUSES = tuple(sorted(LIVE))
TERMINAL_STATUSES = tuple(sorted(TERMINAL))
LIVE_CALLS = f"placed = 1 AND status IN ({', '.join('?' * len(LIVE_STATUSES))})"
"""THE live calls: the one condition safety, the dialer and the call log count and list."""


def stamp(moment: datetime) -> str:
    """A moment as the store keeps it: ISO-8601, seconds precision, its own offset."""
    return moment.isoformat(timespec="seconds")


def utc_stamp(moment: datetime) -> str:
    """A bound compared with stored timestamps: in UTC, as the clock writes them."""
    return stamp(moment.astimezone(timezone.utc))


def marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def plain(row: Any) -> dict[str, Any]:
    """A row as a plain mapping, without the insertion-order column only PostgreSQL's calls have."""
    values = dict(row)
    values.pop("seq", None)
    return values
