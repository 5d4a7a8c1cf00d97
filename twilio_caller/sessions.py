"""Live calls in the server: one `CallSession` per call, holding what the agent and the
webhook hand each other. No polling anywhere: a waiting tool call sleeps on the session's
condition and wakes the moment a reply, a silence or the end of the call is recorded."""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from twilio_caller.clock import Clock
from twilio_caller.store.ports import Carried
from twilio_caller.transport.port import Speech


UNKNOWN = -math.inf  # `idle_since` of a session made from the store, before the store says it


@dataclass(frozen=True)
class Outcome:
    """What one listening turn produced: words, or nothing."""

    kind: Literal["reply", "no-speech"]
    text: str | None = None
    confidence: float | None = None
    while_waiting: bool = False  # said while held for the agent, not in answer to a line


@dataclass(frozen=True)
class Speak:
    text: str
    expect_reply: bool
    language: str | None = None  # the line's, when not the call's
    delivered: asyncio.Event = field(default_factory=asyncio.Event, compare=False)
    id: str = field(default_factory=lambda: secrets.token_hex(8), compare=False)  # across instances


@dataclass(frozen=True)
class HangUp:
    text: str | None
    delivered: asyncio.Event = field(default_factory=asyncio.Event, compare=False)
    id: str = field(default_factory=lambda: secrets.token_hex(8), compare=False)  # across instances


@dataclass(frozen=True)
class Press:
    digits: str
    delivered: asyncio.Event = field(default_factory=asyncio.Event, compare=False)
    id: str = field(default_factory=lambda: secrets.token_hex(8), compare=False)  # across instances


Action = Speak | HangUp | Press


def action_to_dict(action: Action) -> dict[str, object]:
    """An action as the store keeps it until it is delivered."""
    if isinstance(action, Speak):
        spoken: dict[str, object] = {"kind": "speak", "text": action.text, "expect_reply": action.expect_reply,
                                     "id": action.id}
        return spoken | ({"language": action.language} if action.language else {})
    if isinstance(action, HangUp):
        return {"kind": "hangup", "text": action.text, "id": action.id}
    return {"kind": "press", "digits": action.digits, "id": action.id}


def action_from_dict(data: dict[str, object]) -> Action:
    action: Action
    if data["kind"] == "speak":
        language = data.get("language")
        action = Speak(str(data["text"]), bool(data["expect_reply"]), str(language) if language else None)
    elif data["kind"] == "hangup":
        action = HangUp(None if data["text"] is None else str(data["text"]))
    else:
        action = Press(str(data["digits"]))
    if "id" in data:  # actions queued before they had ids keep the new one
        object.__setattr__(action, "id", str(data["id"]))
    return action


@dataclass
class CallSession:
    call_id: str
    token: str
    to_number: str
    to_name: str | None
    message: str
    interactive: bool
    keep_open: bool
    closing: str
    speech: Speech
    reprompts_left: int
    twilio_sid: str | None = None
    status: str = "pending"
    ended: bool = False
    hung_up_by_us: bool = False
    gather_number: int = 0
    hold_number: int = 0
    holding: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    seen: int = 0  # outcomes already handed to the agent
    last_prompt: list[str] = field(default_factory=list)
    prompt_language: str | None = None  # the language last_prompt was asked in (None: the call's)
    answers: dict[str, asyncio.Future[str]] = field(default_factory=dict)  # replays: same TwiML
    unsaved: list[tuple[str, str, float | None, str | None]] = field(default_factory=list)  # lines of the answer being made
    taken: list[Action] = field(default_factory=list)  # actions the answer being made delivers
    opted_out: bool = False
    digits_sent: bool = False  # SendDigits on create: Twilio turns answering-machine detection off
    detecting: bool = False  # asynchronous machine detection was asked for and has not reported
    detected_as: str | None = None  # what it reported: human, machine, fax, unknown
    goodbye_pending: bool = False  # a message was said before detection reported: the goodbye waits
    acknowledged: bool = True  # no acknowledgement due: one was said in this wait, or no callee turn began one
    quiet_since: float = 0.0  # when the callee last stopped speaking (monotonic, the server's estimate)
    latency_turn: int = 0  # the turn the latency marks are about (a reply of the callee begins one)
    latency_marked: set[tuple[str, int]] = field(default_factory=set)  # marks written, by (mark, turn)
    acknowledgements_said: int = 0  # which acknowledgement comes next
    idle_since: float = 0.0
    events: list[dict[str, object]] = field(default_factory=list)  # progress, for the CLI
    shares_progress: bool = False  # other instances answer this call too: its own progress goes on record
    unpublished: list[dict[str, object]] = field(default_factory=list)  # own progress not on record yet
    streamed: bool = False  # a `call` here streams its progress: the other instances' is read in too
    progress_read: int = 0  # records of progress read in from the store
    failure: Exception | None = None  # a write that failed: the call was ended, tools get this error
    engine: str = "gather"  # gather (TwiML) or relay (a ConversationRelay socket), issue 17
    revision: int = 0  # counts what changed the session here (an answer saved, an action queued, a refresh)

    def __post_init__(self) -> None:
        self._changed = asyncio.Condition()
        self._actions: asyncio.Queue[Action] = asyncio.Queue()
        self.answering = asyncio.Lock()  # one answer is made at a time; replays share it
        self.syncing = asyncio.Lock()  # a refresh from the store, or an action being queued: one at a time
        self._detour = asyncio.Event()  # set: a request held for the agent lets go now
        self.progressed = asyncio.Event()

    def carried(self, clock: Clock) -> Carried:
        """What the next answer must go on from, whichever instance makes it (in wall-clock
        time: another machine's monotonic clock counts from elsewhere)."""
        steered_at = None if self.idle_since == UNKNOWN else _wall(clock, self.idle_since)
        return Carried(steered_at=steered_at, quiet_since=_wall(clock, self.quiet_since),
                       acknowledged=self.acknowledged, acknowledgements_said=self.acknowledgements_said,
                       goodbye_pending=self.goodbye_pending)

    def carry_on(self, carried: Carried, clock: Clock, *, answering: bool) -> None:
        """Go on from what another instance's answer left. The unsteered budget's start only
        moves later (a tool here may have steered since); the rest only when no answer is
        being made here (that answer writes them)."""
        if carried.steered_at is not None:
            self.idle_since = max(self.idle_since, _monotonic(clock, carried.steered_at))
        elif self.idle_since == UNKNOWN:  # a call on record from before the budget was kept
            self.idle_since = clock.monotonic()
        if answering:
            return
        if carried.quiet_since is not None:
            self.quiet_since = _monotonic(clock, carried.quiet_since)
        self.acknowledged, self.acknowledgements_said = carried.acknowledged, carried.acknowledgements_said
        self.goodbye_pending = carried.goodbye_pending

    def emit(self, event: dict[str, object], *, own: bool = True) -> None:
        """A progress event; `own`: this instance saw it happen (not read from the store)."""
        self.events.append(event)
        if own and self.shares_progress:
            self.unpublished.append(event)
        self.progressed.set()

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, ready: Callable[[], bool], timeout: float) -> bool:
        """True once `ready()` holds; False when `timeout` seconds pass first."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(ready), timeout)
            except TimeoutError:
                return ready()
        return True

    async def record_outcome(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        await self.notify()

    async def end(self, status: str) -> None:
        self.status = status
        self.ended = True
        self.progressed.set()
        await self.notify()
        while not self._actions.empty():  # nobody will take them now
            self._actions.get_nowait().delivered.set()

    def new_outcomes(self) -> bool:
        return len(self.outcomes) > self.seen

    def take_outcomes(self) -> list[Outcome]:
        fresh = self.outcomes[self.seen:]
        self.seen = len(self.outcomes)
        return fresh

    def submit(self, action: Action) -> None:
        self._actions.put_nowait(action)

    def requeue(self, actions: list[Action], *, front: bool = False) -> None:
        """Put actions back (restored from the store, or taken by an answer never given)."""
        waiting = []
        while not self._actions.empty():
            waiting.append(self._actions.get_nowait())
        for action in [*actions, *waiting] if front else [*waiting, *actions]:
            self._actions.put_nowait(action)

    def replace_pending(self, pending: Sequence[Action], taken: Sequence[Action]) -> None:
        """The store's queue of undelivered actions is the truth (another instance may have
        delivered some, or queued new ones): an action already queued here stays the same
        object (tools here wait on its `delivered`); one queued here that the store no longer
        holds was delivered elsewhere. `taken`: being delivered by an answer made here."""
        local: dict[str, Action] = {}
        while not self._actions.empty():
            action = self._actions.get_nowait()
            local[action.id] = action
        busy = {action.id for action in taken}
        for action in pending:
            if action.id not in busy:
                self._actions.put_nowait(local.pop(action.id, action))
        for delivered in local.values():
            delivered.delivered.set()

    def detour(self) -> None:
        """The call goes another way (a machine was detected): a request held for the agent
        stops waiting at once, without taking an action."""
        self._detour.set()

    async def next_action(self, timeout: float) -> Action | None:
        """The agent's next action, or None after `timeout` seconds or a detour."""
        self.holding = True
        getter = asyncio.ensure_future(self._actions.get())
        detour = asyncio.ensure_future(self._detour.wait())
        try:
            done, _ = await asyncio.wait({getter, detour}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            return getter.result() if getter in done else None
        finally:
            self.holding = False
            self._detour.clear()
            for waiting in (getter, detour):
                waiting.cancel()  # a get cancelled after an item arrived leaves the item queued


def _wall(clock: Clock, monotonic: float) -> datetime:
    return clock.now() - timedelta(seconds=clock.monotonic() - monotonic)


def _monotonic(clock: Clock, moment: datetime) -> float:
    return clock.monotonic() - (clock.now() - moment).total_seconds()


class Registry:
    """The live calls of this server, by call_id."""

    def __init__(self) -> None:
        self._sessions: dict[str, CallSession] = {}

    def add(self, session: CallSession) -> None:
        self._sessions[session.call_id] = session

    def get(self, call_id: str) -> CallSession | None:
        return self._sessions.get(call_id)

    def discard(self, call_id: str) -> None:
        self._sessions.pop(call_id, None)

    def all(self) -> list[CallSession]:
        return list(self._sessions.values())

    def live(self) -> list[CallSession]:
        return [s for s in self._sessions.values() if not s.ended]
