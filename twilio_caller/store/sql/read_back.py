"""A call read back in one statement, for both stores: its row, its durable state, the
outcomes of its listening turns and how many the agent was handed — what an instance sharing
the store needs before it answers a request or acts on a call (`shared_calls.SharedCalls`).

The one place listing what is read back: `STATE_COLUMNS` (the call_state columns) and the
subqueries of `read_back_sql`; `snapshot` turns a row of it into a `CallSnapshot`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from twilio_caller.store.ports import OUTCOME_EVENT, SEEN_EVENT, CallSnapshot, CallStateRecord, Carried
from twilio_caller.store.sql.dialect import Dialect, SqlDatabase, plain

STATE_COLUMNS = ("gather_seq", "hold_seq", "reprompts_left", "last_prompt", "pending_actions", "owner",
                 "lease_until", "max_seconds", "steered_at", "quiet_since", "acknowledged",
                 "acknowledgements_said", "goodbye_pending", "async_detection")


def read_back_sql(dialect: Dialect) -> str:
    """One statement, one row (none for an unknown call); its only parameter is the call_id."""
    state = ", ".join(f"s.{column} AS state_{column}" for column in STATE_COLUMNS)
    outcomes = dialect.json_pairs.format("e.sequence_number", "e.payload")
    return (
        f"SELECT c.*, s.call_id AS state_of, {state},"  # noqa: S608 - column names, not values
        f" (SELECT {outcomes} FROM events e WHERE e.call_id = c.id AND e.kind = '{OUTCOME_EVENT}') AS read_outcomes,"
        f" (SELECT MAX(e.sequence_number) FROM events e WHERE e.call_id = c.id AND e.kind = '{SEEN_EVENT}')"
        " AS read_seen"
        " FROM calls c LEFT JOIN call_state s ON s.call_id = c.id WHERE c.id = ?"
    )


def snapshot(row: Mapping[str, Any]) -> CallSnapshot:
    values = plain(row)
    state_of = values.pop("state_of")
    state = {column: values.pop(f"state_{column}") for column in STATE_COLUMNS}
    pairs = sorted(json.loads(values.pop("read_outcomes")), key=lambda pair: int(pair[0]))
    seen = values.pop("read_seen")
    return CallSnapshot(
        row=values, state=state_record(state) if state_of is not None else None,
        outcomes=[dict(json.loads(payload)) for _, payload in pairs], seen=int(seen or 0),
    )


def state_record(row: Mapping[str, Any]) -> CallStateRecord:
    """A call_state row (its columns as STATE_COLUMNS names them)."""
    return CallStateRecord(
        gather_seq=row["gather_seq"], hold_seq=row["hold_seq"], reprompts_left=row["reprompts_left"],
        last_prompt=json.loads(row["last_prompt"]), pending_actions=json.loads(row["pending_actions"]),
        owner=row["owner"], lease_until=_moment(row["lease_until"]), max_seconds=row["max_seconds"],
        carried=Carried(
            steered_at=_moment(row["steered_at"]), quiet_since=_moment(row["quiet_since"]),
            acknowledged=bool(row["acknowledged"]), acknowledgements_said=row["acknowledgements_said"],
            goodbye_pending=bool(row["goodbye_pending"]),
        ),
        async_detection=bool(row["async_detection"]),
    )


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class SqlReadBack:
    """The read-back on the store's own (synchronous) connection: SQLite's, and any caller
    that is not on an event loop."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database
        self._sql = read_back_sql(database.dialect)

    def read_back_now(self, call_id: str) -> CallSnapshot | None:
        rows = self._db.query(self._sql, (call_id,))
        return snapshot(rows[0]) if rows else None

    async def read_back(self, call_id: str) -> CallSnapshot | None:
        """SQLite: from the process's own file, right here (microseconds, one server per home)."""
        return self.read_back_now(call_id)

    async def close(self) -> None:
        """Nothing of its own to close (the store's connection is the store's)."""
