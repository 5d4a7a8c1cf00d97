"""The durable state of a live call: what Twilio's next request needs, kept in the store.

The sequences the callback URLs carry (gather, hold), the agent's actions not yet delivered,
the TwiML already given to each request key, and which server runs the call (a lease). A
request's answer, the transcript lines it speaks and the state it leaves are written in one
transaction (the repository's `commit`), so a restarted server continues a call exactly where
it was, and a replay of request N gets answer N."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from twilio_caller.clock import Clock, isoformat
from twilio_caller.processes import pid_alive
from twilio_caller.store import Store
from twilio_caller.store.ports import Answer, CallStateRecord, Carried, LeaseHolder, Line

LEASE_SECONDS = 20
PROMPT_LANGUAGE = "prompt-language"  # event: a listening turn asked in another language than the call's


@dataclass
class State:
    gather_seq: int = 0
    hold_seq: int = 0
    reprompts_left: int | None = None
    last_prompt: list[str] = field(default_factory=list)
    pending_actions: list[dict[str, Any]] = field(default_factory=list)
    owner: str | None = None
    lease_until: datetime | None = None
    carried: Carried = field(default_factory=Carried)
    async_detection: bool = False


class CallStates:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._states = store.call_states
        self._calls = store.calls
        self._clock = clock

    def load(self, call_id: str) -> State:
        return self.state_of(self._states.load(call_id))

    @staticmethod
    def state_of(record: CallStateRecord | None) -> State:
        """A call's state as the store records it (None: nothing recorded yet)."""
        if record is None:
            return State()
        return State(
            gather_seq=record.gather_seq, hold_seq=record.hold_seq, reprompts_left=record.reprompts_left,
            last_prompt=list(record.last_prompt or []), pending_actions=list(record.pending_actions or []),
            owner=record.owner, lease_until=record.lease_until, carried=record.carried,
            async_detection=record.async_detection,
        )

    def answer(self, call_id: str, key: str) -> str | None:
        return self._states.answer(call_id, key)

    def unanswered_gather(self, call_id: str) -> int | None:
        """The Gather given last, when Twilio's request for it never reached a server: no
        answer on record and no reply written under its key (the callee was still being
        listened to). None when there is no such Gather."""
        number = self.load(call_id).gather_seq
        if number == 0 or self.answer(call_id, f"gather:{number}") is not None:
            return None
        return None if self._calls.has_turn(call_id, f"{call_id}:gather:{number}") else number

    def prompt_language(self, call_id: str, turn: int) -> str | None:
        """The language listening turn `turn` was asked in, when not the call's (the latest
        `prompt-language` event for it; none: the call's)."""
        noted = [payload for payload in self._calls.event_payloads(call_id, PROMPT_LANGUAGE)
                 if payload.get("turn") == turn]
        return str(noted[-1]["language"]) if noted and noted[-1].get("language") else None

    def commit(self, call_id: str, key: str, twiml: str, lines: Sequence[Line], *,
               gather_seq: int, hold_seq: int, reprompts_left: int, last_prompt: Sequence[str],
               delivered: int, carried: Carried | None = None) -> str:
        """The answer to request `key`, the lines it speaks and the state it leaves, at once.
        `delivered` agent actions leave the queue. Returns the answer on record (a concurrent
        server's, should one have answered the same request first)."""
        answer = Answer(key=key, twiml=twiml, lines=lines, gather_seq=gather_seq, hold_seq=hold_seq,
                        reprompts_left=reprompts_left, last_prompt=last_prompt, delivered=delivered,
                        carried=carried)
        return self._states.commit(call_id, answer, self._clock.now())

    def start(self, call_id: str, owner: str, max_seconds: int, *, async_detection: bool = False) -> None:
        """A call this server places: its lease, how long it may last, whether machine
        detection reports while it goes on."""
        now = self._clock.now()
        self._states.start(call_id, owner, max_seconds, _lease_end(now), now, async_detection=async_detection)

    def steer(self, call_id: str) -> None:
        """The agent steered the call now (a wait, digits sent through the API)."""
        self._states.steer(call_id, self._clock.now())

    def max_seconds(self, call_id: str) -> int | None:
        record = self._states.load(call_id)
        return record.max_seconds if record else None

    def issue_hold(self, call_id: str) -> int:
        """A hold URL given outside any request (an API update of the call): its sequence."""
        return self._states.issue_hold(call_id, self._clock.now())

    def queue_action(self, call_id: str, action: dict[str, Any]) -> None:
        self._states.queue_action(call_id, action, self._clock.now())

    def drop_actions(self, call_id: str) -> None:
        self._states.drop_actions(call_id, self._clock.now())

    # -- leases ----------------------------------------------------------------------------

    def claim(self, call_id: str, owner: str) -> bool:
        """Take the call for `owner` unless another server's lease on it is still fresh (and,
        on this machine, its process still runs)."""
        now = self._clock.now()
        return self._states.claim(call_id, owner, _lease_end(now), now, owner_alive)

    def renew(self, call_ids: Sequence[str], owner: str) -> None:
        self._states.renew(call_ids, owner, _lease_end(self._clock.now()))

    def release(self, call_ids: Sequence[str], owner: str) -> None:
        self._states.release(call_ids, owner)


class HomeLease:
    """The one server of a home (`home_lease`), or one instance of a shared deployment
    (`instance_lease`: its id is taken once). A second server does not start while the lease
    is fresh; a client that cannot reach a server holding a fresh lease says so instead of
    starting one. On a shared store the lease time alone decides (the store ignores pids)."""

    def __init__(self, store: Store, clock: Clock, name: str) -> None:
        self._leases = store.leases
        self._clock = clock
        self._pid_counts = not store.wakeups.shared
        self.name = name

    def holder(self) -> dict[str, Any] | None:
        """The server holding a fresh lease, if any: {owner, pid, lease_until}."""
        holder = self._leases.holder(self.name)
        if holder is None or holder.lease_until <= self._clock.now():
            return None
        if self._pid_counts and not pid_alive(holder.pid):
            return None
        return _described(holder)

    def acquire(self, owner: str, pid: int) -> dict[str, Any] | None:
        """Take or renew the lease; None when done, else the fresh holder that has it."""
        now = self._clock.now()
        holder = self._leases.acquire(self.name, owner, pid, _lease_end(now), now, pid_alive)
        return _described(holder) if holder is not None else None

    def release(self, owner: str) -> None:
        self._leases.release(self.name, owner)


def home_lease(home: Path) -> str:
    """The lease name of a home's one server: unique per machine and home directory, so homes
    (and deployments) sharing one PostgreSQL database never hold each other's lease."""
    return f"server:{socket.gethostname()}:{home.resolve()}"


def instance_lease(instance_id: str) -> str:
    return f"instance:{instance_id}"


def _described(holder: LeaseHolder) -> dict[str, Any]:
    return {"owner": holder.owner, "pid": holder.pid, "lease_until": isoformat(holder.lease_until)}


def _lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=LEASE_SECONDS)


def new_owner(instance_id: str | None = None) -> str:
    """This server's name on leases: its pid (liveness on this machine) and a random part;
    an instance of a shared deployment: its id first (the lease time alone decides there)."""
    mine = f"{os.getpid()}:{secrets.token_hex(6)}"
    return f"{instance_id}/{mine}" if instance_id else mine


def owner_alive(owner: str) -> bool:
    pid = owner.split(":", 1)[0]
    return pid_alive(int(pid)) if pid.isdigit() else True
