"""A waiting tool follows its call when the server it waits on dies.

The store is the truth of every call and the next server of the home takes live calls back
(lease, reconciliation). So a `call`, `say`, `wait` or `hangup` whose server goes away finds
or starts the home's next server, the normal way, and goes on waiting there on the same
call_id: the agent gets the call's real result — the reply (also one the dead server wrote
before it could answer), or the end reconciliation found — instead of exit 7. Bounded: when
no server can be reached or started within FOLLOW_SECONDS, exit 7 names the call and the
commands that follow it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twilio_caller.errors import InvalidInputError, ServerUnavailableError

FOLLOW_SECONDS = 60.0  # to find or start the next server of the home
RETRY_SECONDS = 0.5
MIN_WAIT_SECONDS = 5.0  # the resumed wait, however little of the tool's own wait is left
HANGUP_WAIT_SECONDS = 30.0
FOLLOWED = frozenset({"call", "say", "wait", "hangup"})
Progress = Callable[[dict[str, Any]], None]

if TYPE_CHECKING:
    from twilio_caller.server.client import ServerClient


@dataclass
class Watch:
    """What a waiting tool needs to follow its call: the call_id (for `call`, learnt from
    its `dialing` progress), what it waits for, and how many callee turns the store held
    when it began (a reply past those is this turn's)."""

    home: Path
    tool: str
    arguments: dict[str, Any]
    call_id: str | None
    heard_before: int
    started: float

    @classmethod
    def start(cls, home: Path, tool: str, arguments: dict[str, Any]) -> Watch | None:
        if tool not in FOLLOWED or (tool == "call" and not arguments.get("wait", True)):
            return None
        call_id = arguments.get("call_id")
        if tool != "call" and (not isinstance(call_id, str) or not call_id.startswith("call_")):
            return None  # a scheduled call's wait: the schedule book answers it, not a session
        heard = 0 if call_id is None else _heard(home, call_id)
        return cls(home, tool, arguments, call_id, heard, time.monotonic())

    def learning_call_id(self, progress: Progress | None) -> Progress:
        def learn(event: dict[str, Any]) -> None:
            if event.get("event") == "dialing" and isinstance(event.get("call_id"), str):
                self.call_id = event["call_id"]
            if progress is not None:
                progress(event)

        return learn

    @property
    def until(self) -> str:
        """What the resumed wait waits for: a reply (this turn's) or the call's end."""
        if self.tool == "call":
            interactive = self.arguments.get("interactive") or self.arguments.get("keep_open")
            return "reply" if interactive else "end"
        if self.tool == "wait":
            return str(self.arguments.get("until", "reply"))
        return "reply"


def follow(watch: Watch, *, simulate: bool, wait_seconds: float) -> dict[str, Any]:
    """The call's real result, from the home's next server."""
    assert watch.call_id is not None
    server = next_server(watch.home, watch.call_id, simulate)
    call_id = watch.call_id
    if watch.tool == "hangup":
        try:
            return server.invoke("hangup", watch.arguments, wait_seconds=HANGUP_WAIT_SECONDS)
        except InvalidInputError:  # it ended meanwhile (the hangup went through, or reconciliation)
            return server.invoke("call_status", {"call_id": call_id}, wait_seconds=5)
    if watch.tool == "say" and not watch.arguments.get("expect_reply", True):
        return server.invoke("call_status", {"call_id": call_id}, wait_seconds=5)  # its line is on record: delivered there
    record = server.invoke("call_status", {"call_id": call_id}, wait_seconds=5)
    if record["ended"] or (watch.until == "reply" and _callee_turns(record) > watch.heard_before):
        return this_turn(record, watch)
    remaining = max(wait_seconds - (time.monotonic() - watch.started), MIN_WAIT_SECONDS)
    resumed = server.invoke("wait", {"call_id": call_id, "until": watch.until, "timeout_seconds": remaining},
                            wait_seconds=remaining)
    return this_turn(resumed, watch)


def this_turn(record: dict[str, Any], watch: Watch) -> dict[str, Any]:
    """`reply` is the latest callee turn past those the tool began with, or None with why."""
    from twilio_caller.conversation import NO_REPLY_BY_STATUS

    if watch.until == "end" or _callee_turns(record) > watch.heard_before or record["reply"] is None:
        return record
    reason = NO_REPLY_BY_STATUS.get(record["status"], "failed") if record["ended"] else "timeout"
    return {**record, "reply": None, "no_reply_reason": reason}


def next_server(home: Path, call_id: str, simulate: bool) -> ServerClient:
    from twilio_caller.server.client import ensure_server

    deadline = time.monotonic() + FOLLOW_SECONDS
    while True:
        try:
            return ensure_server(home, simulate=simulate)
        except ServerUnavailableError as exc:
            if time.monotonic() + RETRY_SECONDS > deadline:
                raise ServerUnavailableError(
                    f"the server running call {call_id} stopped and no other could be reached or "
                    f"started within {FOLLOW_SECONDS:.0f} s ({exc.message}); the call is on record: "
                    f"`twilio-caller calls reconcile` starts a server that takes it back, then "
                    f"`twilio-caller wait {call_id}` follows it"
                ) from exc
            time.sleep(RETRY_SECONDS)


def _heard(home: Path, call_id: str) -> int:
    """How many callee turns the store holds for the call (0 when it has none or no store)."""
    from twilio_caller.calls import CallWriter
    from twilio_caller.clock import SystemClock
    from twilio_caller.runtime import existing_store

    store = existing_store(home)
    if store is None:
        return 0
    try:
        record = CallWriter(store, SystemClock()).get(call_id)
    finally:
        store.close()
    return 0 if record is None else _callee_turns(record)


def _callee_turns(record: dict[str, Any]) -> int:
    return sum(1 for turn in record["transcript"] if turn["speaker"] == "callee")
