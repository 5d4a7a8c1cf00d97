"""The durable state of a live call: what Twilio's next request needs, kept in the store.

The sequences the callback URLs carry (gather, hold), the agent's actions not yet delivered,
the TwiML already given to each request key, and which server runs the call (a lease). A
request's answer, the transcript lines it speaks and the state it leaves are written in one
transaction, so a restarted server continues a call exactly where it was, and a replay of
request N gets answer N. SQL here is portable (ON CONFLICT upserts, no SQLite-only verbs)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from twilio_caller.clock import Clock, isoformat
from twilio_caller.processes import pid_alive
from twilio_caller.store import Store

Line = tuple[str, str, float | None, str | None]  # speaker, text, confidence, dedupe_key
LEASE_SECONDS = 20


@dataclass
class State:
    gather_seq: int = 0
    hold_seq: int = 0
    reprompts_left: int | None = None
    last_prompt: list[str] = field(default_factory=list)
    pending_actions: list[dict[str, Any]] = field(default_factory=list)
    owner: str | None = None
    lease_until: str | None = None


class CallStates:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def load(self, call_id: str) -> State:
        rows = self._store.query("SELECT * FROM call_state WHERE call_id = ?", (call_id,))
        if not rows:
            return State()
        row = rows[0]
        return State(
            gather_seq=row["gather_seq"], hold_seq=row["hold_seq"], reprompts_left=row["reprompts_left"],
            last_prompt=json.loads(row["last_prompt"]), pending_actions=json.loads(row["pending_actions"]),
            owner=row["owner"], lease_until=row["lease_until"],
        )

    def answer(self, call_id: str, key: str) -> str | None:
        rows = self._store.query(
            "SELECT twiml FROM call_answers WHERE call_id = ? AND request_key = ?", (call_id, key))
        return rows[0]["twiml"] if rows else None

    def unanswered_gather(self, call_id: str) -> int | None:
        """The Gather given last, when Twilio's request for it never reached a server: no
        answer on record and no reply written under its key (the callee was still being
        listened to). None when there is no such Gather."""
        number = self.load(call_id).gather_seq
        if number == 0 or self.answer(call_id, f"gather:{number}") is not None:
            return None
        rows = self._store.query("SELECT 1 FROM turns WHERE call_id = ? AND dedupe_key = ?",
                                 (call_id, f"{call_id}:gather:{number}"))
        return None if rows else number

    def commit(self, call_id: str, key: str, twiml: str, lines: Sequence[Line], *,
               gather_seq: int, hold_seq: int, reprompts_left: int, last_prompt: Sequence[str],
               delivered: int) -> str:
        """The answer to request `key`, the lines it speaks and the state it leaves, at once.
        `delivered` agent actions leave the queue. Returns the answer on record (a concurrent
        server's, should one have answered the same request first)."""
        at = isoformat(self._clock.now())
        with self._store.transaction() as connection:
            given = connection.execute(
                "SELECT twiml FROM call_answers WHERE call_id = ? AND request_key = ?", (call_id, key)
            ).fetchone()
            if given is not None:
                return str(given["twiml"])
            for speaker, text, confidence, dedupe_key in lines:
                connection.execute(
                    "INSERT INTO turns (call_id, speaker, text, confidence, at, dedupe_key)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
                    (call_id, speaker, text, confidence, at, dedupe_key),
                )
            connection.execute(
                "INSERT INTO call_answers (call_id, request_key, twiml, at) VALUES (?, ?, ?, ?)",
                (call_id, key, twiml, at),
            )
            pending = _pending(connection, call_id)[delivered:]
            _upsert(connection, call_id, at, gather_seq=gather_seq, hold_seq=hold_seq,
                    reprompts_left=reprompts_left, last_prompt=json.dumps(list(last_prompt)),
                    pending_actions=json.dumps(pending))
        return twiml

    def start(self, call_id: str, owner: str, max_seconds: int) -> None:
        """A call this server places: its lease, and how long it may last."""
        now = self._clock.now()
        with self._store.transaction() as connection:
            _upsert(connection, call_id, isoformat(now), owner=owner, max_seconds=max_seconds,
                    lease_until=isoformat(now + timedelta(seconds=LEASE_SECONDS)))

    def max_seconds(self, call_id: str) -> int | None:
        rows = self._store.query("SELECT max_seconds FROM call_state WHERE call_id = ?", (call_id,))
        return rows[0]["max_seconds"] if rows else None

    def issue_hold(self, call_id: str) -> int:
        """A hold URL given outside any request (an API update of the call): its sequence."""
        with self._store.transaction() as connection:
            row = connection.execute("SELECT hold_seq FROM call_state WHERE call_id = ?", (call_id,)).fetchone()
            number = (row["hold_seq"] if row else 0) + 1
            _upsert(connection, call_id, isoformat(self._clock.now()), hold_seq=number)
        return number

    def queue_action(self, call_id: str, action: dict[str, Any]) -> None:
        with self._store.transaction() as connection:
            pending = [*_pending(connection, call_id), action]
            _upsert(connection, call_id, isoformat(self._clock.now()), pending_actions=json.dumps(pending))

    def drop_actions(self, call_id: str) -> None:
        with self._store.transaction() as connection:
            _upsert(connection, call_id, isoformat(self._clock.now()), pending_actions="[]")

    # -- leases ----------------------------------------------------------------------------

    def claim(self, call_id: str, owner: str) -> bool:
        """Take the call for `owner` unless another server's lease on it is still fresh (and,
        on this machine, its process still runs)."""
        now = self._clock.now()
        with self._store.transaction() as connection:
            row = connection.execute(
                "SELECT owner, lease_until FROM call_state WHERE call_id = ?", (call_id,)).fetchone()
            if (row and row["owner"] not in (None, owner) and row["lease_until"]
                    and row["lease_until"] > isoformat(now) and owner_alive(row["owner"])):
                return False
            _upsert(connection, call_id, isoformat(now), owner=owner,
                    lease_until=isoformat(now + timedelta(seconds=LEASE_SECONDS)))
        return True

    def renew(self, call_ids: Sequence[str], owner: str) -> None:
        if not call_ids:
            return
        now = self._clock.now()
        marks = ", ".join("?" * len(call_ids))
        with self._store.transaction() as connection:
            connection.execute(
                f"UPDATE call_state SET lease_until = ? WHERE owner = ? AND call_id IN ({marks})",
                [isoformat(now + timedelta(seconds=LEASE_SECONDS)), owner, *call_ids],
            )

    def release(self, call_ids: Sequence[str], owner: str) -> None:
        if not call_ids:
            return
        marks = ", ".join("?" * len(call_ids))
        with self._store.transaction() as connection:
            connection.execute(
                f"UPDATE call_state SET owner = NULL, lease_until = NULL WHERE owner = ? AND call_id IN ({marks})",
                [owner, *call_ids],
            )


class HomeLease:
    """The one server of a home. A second server does not start while the lease is fresh;
    a client that cannot reach a server holding a fresh lease says so instead of starting one."""

    NAME = "server"

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def holder(self) -> dict[str, Any] | None:
        """The server holding a fresh lease, if any: {owner, pid, lease_until}."""
        rows = self._store.query("SELECT owner, pid, lease_until FROM server_lease WHERE name = ?", (self.NAME,))
        if not rows or rows[0]["lease_until"] <= isoformat(self._clock.now()) or not pid_alive(rows[0]["pid"]):
            return None
        return dict(rows[0])

    def acquire(self, owner: str, pid: int) -> dict[str, Any] | None:
        """Take or renew the lease; None when done, else the fresh holder that has it."""
        now = self._clock.now()
        until = isoformat(now + timedelta(seconds=LEASE_SECONDS))
        with self._store.transaction() as connection:
            row = connection.execute(
                "SELECT owner, pid, lease_until FROM server_lease WHERE name = ?", (self.NAME,)).fetchone()
            if (row and row["owner"] != owner and row["lease_until"] > isoformat(now)
                    and pid_alive(row["pid"])):
                return dict(row)
            connection.execute(
                "INSERT INTO server_lease (name, owner, pid, lease_until) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,"
                " lease_until = excluded.lease_until",
                (self.NAME, owner, pid, until),
            )
        return None

    def release(self, owner: str) -> None:
        with self._store.transaction() as connection:
            connection.execute("DELETE FROM server_lease WHERE name = ? AND owner = ?", (self.NAME, owner))


def new_owner() -> str:
    """This server's name on leases: its pid (liveness on this machine) and a random part."""
    return f"{os.getpid()}:{secrets.token_hex(6)}"


def owner_alive(owner: str) -> bool:
    pid = owner.split(":", 1)[0]
    return pid_alive(int(pid)) if pid.isdigit() else True


def _pending(connection: Any, call_id: str) -> list[dict[str, Any]]:
    row = connection.execute("SELECT pending_actions FROM call_state WHERE call_id = ?", (call_id,)).fetchone()
    return list(json.loads(row["pending_actions"])) if row else []


def _upsert(connection: Any, call_id: str, at: str, **fields: Any) -> None:
    columns = ["call_id", "updated_at", *fields]
    updates = ", ".join(f"{column} = excluded.{column}" for column in ["updated_at", *fields])
    connection.execute(
        f"INSERT INTO call_state ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT (call_id) DO UPDATE SET {updates}",
        [call_id, at, *fields.values()],
    )
