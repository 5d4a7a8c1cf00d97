"""The store's interfaces: what the domain modules (contacts, calls, safety, call_state,
scheduled) need from persistent state, as small typed protocols, and the records that cross
them. An implementation (today `store.sqlite`) holds every line of SQL; nothing here names a
driver, a connection or a cursor, and every method that writes is one transaction of its own,
so a second implementation (PostgreSQL, several servers on one database) plugs in unchanged.

Times given to a repository cross as aware datetimes. Rows the domain shapes itself (a call
record, a scheduled call) cross as read-only mappings of the schema's columns; the timestamps
inside call and contact records are the ISO-8601 strings tools return (seconds, with offset),
so every implementation renders them the same way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

Row = Mapping[str, Any]
Line = tuple[str, str, float | None, str | None]  # speaker, text, confidence, dedupe_key


# -- contacts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    id: int
    name: str
    number: str
    timezone: str | None
    voice: str | None
    notes: str | None
    opted_out_at: str | None
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["id"]
        return data


@dataclass(frozen=True)
class ContactFields:
    """A contact's values, each checked and normalised, ready to store."""

    name: str
    number: str
    timezone: str | None
    voice: str | None
    notes: str | None


class Taken(Exception):  # noqa: N818 - a fact reported by the store, not a failure of it
    """A name (by its key) or a number already belongs to another contact."""

    def __init__(self, field: str, holder: str, index: int = 0) -> None:
        super().__init__(f"{field} taken by {holder}")
        self.field = field  # "name" or "number"
        self.holder = holder  # the name of the contact that has it
        self.index = index  # which of the entries written together clashed


class ContactRepository(Protocol):
    """Names are unique by their key (the domain's case- and space-folded form)."""

    def all(self) -> list[Contact]: ...
    def by_key(self, name_key: str) -> Contact | None: ...
    def by_number(self, e164: str) -> Contact | None: ...
    def add(self, entries: Sequence[tuple[ContactFields, str]], now: datetime) -> list[Contact]:
        """(fields, name_key) each; all of them or none (Taken names the first clash)."""
    def update(self, contact_id: int, fields: ContactFields, name_key: str, *, opt_in: bool,
               now: datetime) -> None: ...
    def opt_out(self, e164: str, now: datetime) -> None:
        """Mark the contact with this number opted out (its first opt-out time is kept)."""
    def remove(self, contact_id: int) -> None: ...


# -- the call log ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewCall:
    """A call as safety's reservation records it (status pending, not yet placed)."""

    id: str
    token: str
    to_number: str
    mode: str
    contact_id: int | None = None
    to_name: str | None = None
    message: str | None = None
    keep_open: bool = False
    voice: str | None = None
    language: str | None = None
    engine: str = "gather"  # the transport that carries it: gather (TwiML) or relay (ConversationRelay)


@dataclass(frozen=True)
class CallFilter:
    """Which calls: of one contact (by id, or by the name a removed contact's calls kept),
    with a status, created at or after `since` / before `before`, only ended ones."""

    contact_id: int | None = None
    removed_contact: str | None = None
    status: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    ended_only: bool = False


class CallRepository(Protocol):
    def insert(self, call: NewCall, now: datetime) -> None: ...
    def get(self, call_id: str) -> Row | None: ...
    def find(self, where: CallFilter, limit: int) -> list[Row]:
        """Newest first."""
    def live(self) -> list[Row]:
        """THE live calls: placed and in a live status (call_status.LIVE)."""
    def latest_to(self, number: str, since: datetime) -> str | None:
        """The newest call to `number` recorded at or after `since`."""
    def turns(self, call_id: str) -> list[Row]:
        """speaker, text, confidence, at — in order."""
    def event_payloads(self, call_id: str, kind: str) -> list[dict[str, Any]]: ...
    def placed(self, call_id: str, provider_sid: str, status: str) -> None:
        """The provider took the call: its id, and its status unless the call moved on."""
    def not_placed(self, call_id: str, error: str, now: datetime) -> None:
        """The provider refused it: failed, not counted against any cap."""
    def add_turns(self, call_id: str, lines: Sequence[Line], now: datetime) -> list[bool]:
        """For each line, False when its dedupe_key was recorded before."""
    def has_turn(self, call_id: str, dedupe_key: str) -> bool:
        """Whether a line was recorded under `dedupe_key`."""
    def add_event(self, call_id: str, kind: str, status: str | None, sequence: int | None,
                  payload: Mapping[str, Any], now: datetime, *, content_key: str | None) -> bool:
        """False for a duplicate (same kind and sequence, or same content_key)."""
    def advance(self, call_id: str, status: str, fields: Mapping[str, Any], now: datetime) -> str:
        """Move forward by status rank (never back; terminal is final), set the non-None
        `fields`; the status now (`status` itself when the call is unknown)."""
    def purge(self, where: CallFilter) -> dict[str, int]:
        """Delete turns and events of the matching calls: {"turns": n, "events": n}."""


# -- the safety ledger -------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    live_calls: int
    calls_today: int
    contact_calls_today: int
    last_contact_call_at: datetime | None


class Verdict(Protocol):
    @property
    def allowed(self) -> bool: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


V = TypeVar("V", bound=Verdict)


@dataclass(frozen=True)
class Reservation:
    """One request to the gate: whom (a contact, else the bare number), the owner's day, what
    is audited, and — for a real placement — the call to record when it is allowed."""

    tool: str
    to_number: str
    contact_id: int | None
    message: str
    now: datetime
    day: tuple[datetime, datetime]
    call: NewCall | None = None


@dataclass(frozen=True)
class Reserved:
    decision_id: int
    call_id: str | None


@dataclass(frozen=True)
class DayUsage:
    calls: int
    live_calls: int
    per_contact: Mapping[int, int]


class SafetyLedger(Protocol):
    def reserve(self, reservation: Reservation, decide: Callable[[Usage], V]) -> tuple[V, Reserved]:
        """At once, as one transaction no concurrent reservation interleaves with: count the
        usage, `decide`, audit the decision and, when allowed, record `reservation.call`."""
    def day_usage(self, day: tuple[datetime, datetime]) -> DayUsage: ...
    def approval_holds(self, decision_id: int, call_id: str, to_number: str) -> bool:
        """The audited decision allowed exactly this call to this number, not yet dialled."""
    def decisions(self, limit: int) -> list[Row]:
        """The latest audited decisions, newest first."""


# -- call state and leases ---------------------------------------------------------------


@dataclass(frozen=True)
class Carried:
    """What a live call's conversation keeps between requests besides the sequences, written
    with each answer so that whichever instance answers next goes on from it (issue 18):
    when the agent last steered the call (the unsteered budget runs from there), when the
    callee last stopped speaking and whether that wait was acknowledged yet (and which
    acknowledgement comes next), and a goodbye waiting for machine detection's result."""

    steered_at: datetime | None = None
    quiet_since: datetime | None = None
    acknowledged: bool = True
    acknowledgements_said: int = 0
    goodbye_pending: bool = False


@dataclass
class CallStateRecord:
    gather_seq: int = 0
    hold_seq: int = 0
    reprompts_left: int | None = None
    last_prompt: list[str] | None = None
    pending_actions: list[dict[str, Any]] | None = None
    owner: str | None = None
    lease_until: datetime | None = None
    max_seconds: int | None = None
    carried: Carried = field(default_factory=Carried)
    async_detection: bool = False  # asynchronous machine detection was asked for when it was placed


@dataclass(frozen=True)
class LeaseHolder:
    owner: str
    pid: int
    lease_until: datetime


@dataclass(frozen=True)
class Answer:
    """A request's answer and the state it leaves (`delivered` actions leave the queue)."""

    key: str
    twiml: str
    lines: Sequence[Line]
    gather_seq: int
    hold_seq: int
    reprompts_left: int
    last_prompt: Sequence[str]
    delivered: int
    carried: Carried | None = None  # None: left as it is


class CallStateRepository(Protocol):
    def load(self, call_id: str) -> CallStateRecord | None: ...
    def answer(self, call_id: str, key: str) -> str | None: ...
    def commit(self, call_id: str, answer: Answer, now: datetime) -> str:
        """Answer, lines and state at once; the answer on record (a concurrent one's first)."""
    def start(self, call_id: str, owner: str, max_seconds: int, lease_until: datetime, now: datetime, *,
              async_detection: bool = False) -> None:
        """A call placed now (steered now): its lease, its limit, whether detection is asynchronous."""
    def issue_hold(self, call_id: str, now: datetime) -> int: ...
    def queue_action(self, call_id: str, action: Mapping[str, Any], now: datetime) -> None:
        """An action of the agent's, to deliver: the call was steered `now`."""
    def steer(self, call_id: str, now: datetime) -> None:
        """The agent steered the call `now` (the unsteered budget starts again)."""
    def drop_actions(self, call_id: str, now: datetime) -> None: ...
    def claim(self, call_id: str, owner: str, lease_until: datetime, now: datetime,
              alive: Callable[[str], bool]) -> bool:
        """Take the call unless another owner's lease is fresh and `alive(owner)`. A store
        several machines share (PostgreSQL) decides by the lease time alone: `alive` is a
        one-machine rule (a pid)."""
    def renew(self, call_ids: Sequence[str], owner: str, lease_until: datetime) -> None: ...
    def release(self, call_ids: Sequence[str], owner: str) -> None: ...


class LeaseRepository(Protocol):
    """Named leases (the home's one server)."""

    def holder(self, name: str) -> LeaseHolder | None:
        """Who holds it, fresh or not."""
    def acquire(self, name: str, owner: str, pid: int, lease_until: datetime, now: datetime,
                alive: Callable[[int], bool]) -> LeaseHolder | None:
        """Take or renew; None when done, else the fresh live holder that keeps it (a shared
        store: the fresh holder, by lease time alone)."""
    def release(self, name: str, owner: str) -> None: ...


OUTCOME_EVENT = "outcome"  # a listening turn's outcome, numbered in the call (shared stores)
SEEN_EVENT = "seen"  # how many outcomes the agent was handed, through any instance (shared stores)


@dataclass(frozen=True)
class CallSnapshot:
    """A call as an instance sharing the store reads it back before it answers a request or
    acts on the call, in one statement (`store/sql/read_back.py` lists what is read)."""

    row: Row  # the call's record
    state: CallStateRecord | None  # its durable state (None until the call was started)
    outcomes: list[dict[str, Any]]  # the payloads of its `outcome` events, in their order
    seen: int  # how many of them the agent was handed (the highest `seen` event)


class CallReader(Protocol):
    """The read-back as the server's event loop awaits it: PostgreSQL through psycopg's
    async pool (the loop never waits on the database); SQLite from its file, in place."""

    async def read_back(self, call_id: str) -> CallSnapshot | None:
        """None for a call the store does not know."""
    async def close(self) -> None: ...


class Wakeups(Protocol):
    """Tells the other processes on this store that a call changed (a reply, a status, an
    action queued or delivered), so a tool or a held request waiting on the call there wakes
    at once. `shared`: other processes may serve the store's calls (PostgreSQL: LISTEN/NOTIFY);
    a store only one server uses (SQLite in a home) wakes its waiters in process, and its
    notify does nothing."""

    @property
    def shared(self) -> bool: ...
    def notify(self, call_id: str) -> None:
        """After the change is committed."""
    async def listen(self, wake: Callable[[str | None], None]) -> Callable[[], Awaitable[None]]:
        """`wake(call_id)` for each change another process notifies, on the event loop that
        listens (None: notifications may have been missed, look at every call again); returns
        once listening, with the coroutine function that stops it."""


# -- scheduled calls ---------------------------------------------------------------------


@dataclass(frozen=True)
class NewScheduled:
    id: str
    arguments: Mapping[str, Any]
    to_name: str | None
    to_number: str
    due_at: datetime
    retry_on: Sequence[str]
    max_attempts: int
    spacing_minutes: float
    when_allowed: bool
    detail: str | None


class ScheduleRepository(Protocol):
    """Rows have the columns of a scheduled call, with JSON fields decoded and times parsed."""

    def add(self, item: NewScheduled, now: datetime) -> None: ...
    def get(self, scheduled_id: str) -> Row | None: ...
    def in_states(self, states: Sequence[str]) -> list[Row]:
        """By due time (empty `states`: all)."""
    def due(self, now: datetime) -> list[Row]:
        """Scheduled ones due at or before `now`, by due time."""
    def count(self, states: Sequence[str]) -> int: ...
    def transition(self, scheduled_id: str, from_states: Sequence[str], values: Mapping[str, Any],
                   now: datetime) -> bool:
        """Set `values` only if the item is in one of `from_states`; whether it was."""
    def add_attempt(self, scheduled_id: str, call_id: str | None, now: datetime) -> None: ...


# -- moving a store's data (store export / import) --------------------------------------


TABLES: tuple[str, ...] = ("contacts", "calls", "turns", "events", "safety_decisions", "call_state",
                           "call_answers", "scheduled_calls")
"""What a store's data is, in the order a copy is written (rows refer only to earlier tables).
The home's server lease is not data: it belongs to the machine that runs the server."""


class NotEmpty(Exception):  # noqa: N818 - a fact reported by the store, not a failure of it
    """A copy is only loaded into a store that holds no data yet."""

    def __init__(self, table: str, rows: int) -> None:
        super().__init__(f"{table} holds {rows} rows")
        self.table = table
        self.rows = rows


class BadCopy(Exception):  # noqa: N818
    """A row of a copy that does not fit the schema (a column it lacks, a broken reference,
    a duplicate, a wrong type): nothing of the copy was written."""

    def __init__(self, table: str, detail: str) -> None:
        super().__init__(f"{table}: {detail}")
        self.table = table
        self.detail = detail


class TableCopy(Protocol):
    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table of TABLES, columns as stored, in a stable order."""
    def load(self, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
        """Into a store without data (else NotEmpty), all rows or none (else BadCopy); the rows
        written per table."""


# -- the whole store ---------------------------------------------------------------------


class Store(Protocol):
    @property
    def contacts(self) -> ContactRepository: ...
    @property
    def calls(self) -> CallRepository: ...
    @property
    def ledger(self) -> SafetyLedger: ...
    @property
    def call_states(self) -> CallStateRepository: ...
    @property
    def leases(self) -> LeaseRepository: ...
    @property
    def schedule(self) -> ScheduleRepository: ...
    @property
    def tables(self) -> TableCopy: ...
    @property
    def wakeups(self) -> Wakeups: ...
    def reader(self) -> CallReader:
        """A read-back for the event loop that calls this (close it on that loop)."""
    async def off_loop(self, work: Callable[..., T], *arguments: Any) -> T:
        """A store call made from the server's event loop: PostgreSQL runs it in one of the
        store's threads (one per pooled connection), so the loop serves other requests while
        it waits; SQLite runs it in place."""
    def close(self) -> None: ...
