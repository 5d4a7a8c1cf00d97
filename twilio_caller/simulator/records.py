"""What the simulator keeps about each call: the REST resource, its options, and what
happened on the line (for tests to assert on)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers

from twilio_caller.simulator.experience import CalleeExperience, callee_experience
from twilio_caller.simulator.ids import rfc2822

API_VERSION = "2010-04-01"
TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
SUBRESOURCES = (
    "notifications",
    "recordings",
    "payments",
    "events",
    "siprec",
    "streams",
    "transcriptions",
    "user_defined_message_subscriptions",
    "user_defined_messages",
)


@dataclass
class CallOptions:
    """The create (and update) parameters the voice engine follows."""

    url: str | None = None
    twiml: str | None = None
    method: str = "POST"
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: frozenset[str] = frozenset({"completed"})
    timeout: int = 60
    time_limit: int = 14400
    machine_detection: str | None = None
    machine_detection_timeout: int = 30
    async_amd: bool = False
    async_amd_status_callback: str | None = None
    async_amd_status_callback_method: str = "POST"
    send_digits: str | None = None
    record: bool = False


@dataclass(frozen=True)
class Utterance:
    """Something said or played on the line, at simulated time `at`."""

    at: datetime
    kind: str  # say | play | digits | beep | speech
    text: str
    ends: datetime | None = None  # when the callee stopped speaking (callee utterances)
    listened: bool = True  # False: no <Gather>/<Record> was listening for this input
    voice: str | None = None  # said lines: <Say voice>, or ConversationRelay's `ttsProvider.voice`
    language: str | None = None  # said lines: the language they were spoken in


@dataclass(frozen=True)
class CallError:
    code: int
    message: str
    url: str | None
    at: datetime
    fatal: bool = True


@dataclass(frozen=True)
class WebhookRequest:
    """A request the engine made toward the application."""

    purpose: str  # voice | fallback | action | redirect | play | status-callback | amd-callback | relay (a socket)
    method: str
    url: str
    params: dict[str, str]
    status_code: int | None
    seconds: float = 0.0  # call time spent waiting for the answer (real time, counted one to one)


class Finished:
    """Set once, waitable from any thread and from any event loop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    async def wait_async(self, timeout: float | None = None) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._event.is_set():
                return True
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class CallRecord:
    sid: str
    account_sid: str
    to: str
    from_: str
    options: CallOptions
    date_created: datetime
    api_base_url: str
    status: str = "queued"
    date_updated: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None
    statuses: list[str] = field(default_factory=lambda: ["queued"])
    heard: list[Utterance] = field(default_factory=list)
    said: list[Utterance] = field(default_factory=list)
    voicemail: list[Utterance] = field(default_factory=list)
    errors: list[CallError] = field(default_factory=list)
    requests: list[WebhookRequest] = field(default_factory=list)
    status_callbacks: list[dict[str, str]] = field(default_factory=list)
    updates: list[str] = field(default_factory=list)  # Calls API updates: "url", "twiml" or "status=…"
    fetches: int = 0  # Calls API fetches (GET of this call)
    sent_digits: list[str] = field(default_factory=list)
    end_reason: str | None = None
    finished: Finished = field(default_factory=Finished)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    @property
    def is_over(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def heard_text(self) -> list[str]:
        return [item.text for item in self.heard if item.kind == "say"]

    @property
    def said_text(self) -> list[str]:
        return [item.text for item in self.said]

    @property
    def error_codes(self) -> list[int]:
        return [error.code for error in self.errors]

    @property
    def experience(self) -> CalleeExperience:
        """What the callee lived through: wait for the first word, dead air, lost words."""
        return callee_experience(self.answered_at, self.heard, self.said)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the call is over and its callbacks are delivered."""
        return self.finished.wait(timeout)

    async def wait_async(self, timeout: float | None = None) -> bool:
        return await self.finished.wait_async(timeout)

    def to_json(self) -> dict[str, Any]:
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "sid": self.sid,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated or self.date_created),
            "parent_call_sid": None,
            "account_sid": self.account_sid,
            "to": self.to,
            "to_formatted": _formatted(self.to),
            "from": self.from_,
            "from_formatted": _formatted(self.from_),
            "phone_number_sid": None,
            "status": self.status,
            "start_time": _optional_time(self.start_time),
            "end_time": _optional_time(self.end_time),
            "duration": None if self.duration is None else str(self.duration),
            "price": None,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": self.uri,
            "subresource_uris": {name: f"{base}/{_camel(name)}.json" for name in SUBRESOURCES},
        }


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else rfc2822(moment)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _formatted(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    if parsed.country_code == 1:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
