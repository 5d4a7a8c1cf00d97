"""The Simulator: one offline Twilio account with its calls, callees, clock and switches."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from twilio_caller.clock import Clock, SystemClock
from twilio_caller.simulator.callee import CalleeBook, CalleeProfile, FriendlyCallee
from twilio_caller.simulator.chaos import Chaos
from twilio_caller.simulator.engine import CallEngine, EngineContext, Source
from twilio_caller.simulator.errors import NOT_FOUND, NOT_IN_PROGRESS, ApiError
from twilio_caller.simulator.ids import new_sid
from twilio_caller.simulator.params import Dialing, NumberPolicy, Update
from twilio_caller.simulator.records import CallRecord, WebhookRequest
from twilio_caller.simulator.webhook import WebhookClient

if TYPE_CHECKING:
    from starlette.types import ASGIApp


class Simulator:
    """An offline Twilio account. Serve `app` (see `runner`) and point the SDK at it."""

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        time_scale: float = 1.0,
        callees: Mapping[str, CalleeProfile] | CalleeBook | None = None,
        default_callee: CalleeProfile | None = None,
        clock: Clock | None = None,
        caller_ids: Iterable[str] | None = None,
        blocked_numbers: Iterable[str] = (),
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.time_scale = time_scale
        self.clock: Clock = clock or SystemClock()
        self.chaos = Chaos()
        self.policy = NumberPolicy(
            caller_ids=None if caller_ids is None else frozenset(caller_ids),
            blocked=frozenset(blocked_numbers),
        )
        book = callees if isinstance(callees, CalleeBook) else CalleeBook(dict(callees or {}))
        self._callees: dict[str, CalleeProfile] = dict(book.by_number)
        self.default_callee: CalleeProfile = default_callee or book.default or FriendlyCallee()
        self._calls: dict[str, CallRecord] = {}
        self._engines: dict[str, CallEngine] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._webhooks = WebhookClient(self.auth_token, self.chaos)
        self._app: ASGIApp | None = None
        # called (on the simulator's loop) the moment an answer from the app arrives, before
        # the engine acts on it: tests check what the app had stored by then
        self.on_response: Callable[[CallRecord, WebhookRequest], None] | None = None

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            from twilio_caller.simulator.api import build_app

            self._app = build_app(self)
        return self._app

    # -- the network ---------------------------------------------------------------------

    def add_tunnel(self, public_base_url: str, local_base_url: str) -> None:
        """Deliver requests for `public_base_url` to `local_base_url`, as a tunnel (ngrok, a
        reverse proxy) would; they are still signed over the public URL."""
        self._webhooks.tunnels[public_base_url] = local_base_url

    # -- callees -------------------------------------------------------------------------

    def _observe(self, record: CallRecord, request: WebhookRequest) -> None:
        if self.on_response is not None:
            self.on_response(record, request)

    def set_callee(self, number: str, callee: CalleeProfile) -> None:
        self._callees[number] = callee

    def scripted_callee(self, number: str) -> CalleeProfile | None:
        """The callee set for this number (None: the default callee answers)."""
        return self._callees.get(number)

    def forget_callee(self, number: str) -> None:
        self._callees.pop(number, None)

    def callee_for(self, number: str) -> CalleeProfile:
        return self._callees.get(number, self.default_callee)

    # -- calls ---------------------------------------------------------------------------

    @property
    def calls(self) -> list[CallRecord]:
        """Every call, oldest first."""
        return list(self._calls.values())

    def call(self, sid: str) -> CallRecord:
        try:
            return self._calls[sid]
        except KeyError:
            raise ApiError(404, NOT_FOUND, f"The requested resource /Calls/{sid}.json was not found") from None

    def wait_for_call(self, sid: str, timeout: float | None = None) -> CallRecord:
        """Block until the call is over and its callbacks are delivered (any thread)."""
        record = self.call(sid)
        if not record.wait(timeout):
            raise TimeoutError(f"call {sid} still {record.status} after {timeout} s")
        return record

    async def wait_for_call_async(self, sid: str, timeout: float | None = None) -> CallRecord:
        record = self.call(sid)
        if not await record.wait_async(timeout):
            raise TimeoutError(f"call {sid} still {record.status} after {timeout} s")
        return record

    def place_call(self, dialing: Dialing, api_base_url: str) -> CallRecord:
        """Create the call resource and start its life in the running loop."""
        record = CallRecord(
            sid=new_sid("CA"),
            account_sid=self.account_sid,
            to=dialing.to,
            from_=dialing.from_,
            options=dialing.options,
            date_created=self.clock.now(),
            api_base_url=api_base_url.rstrip("/"),
        )
        context = EngineContext(self._webhooks.for_call(), self.chaos, self.clock, self.time_scale, self._observe)
        engine = CallEngine(record, self.callee_for(record.to), context)
        self._calls[record.sid] = record
        self._engines[record.sid] = engine
        task = asyncio.get_running_loop().create_task(engine.run(), name=f"call {record.sid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return record

    def update_call(self, sid: str, update: Update) -> CallRecord:
        record = self.call(sid)
        engine = self._engines[sid]
        if record.is_over:
            raise ApiError(400, NOT_IN_PROGRESS, "Call is not in-progress. Cannot redirect.")
        _apply_options(record, update)
        record.updates.append("twiml" if update.twiml is not None else "url" if update.url is not None
                              else f"status={update.status}")
        if update.time_limit is not None:
            engine.change_time_limit(update.time_limit)
        if update.status == "completed":
            engine.hang_up()
        elif update.status == "canceled":
            engine.cancel()
        elif update.url is not None or update.twiml is not None:
            self._redirect(record, engine, update)
        return record

    def _redirect(self, record: CallRecord, engine: CallEngine, update: Update) -> None:
        if not engine.answered:
            record.options.url, record.options.twiml = update.url, update.twiml
            return
        method = update.method or record.options.method
        engine.redirect(Source("update", update.url, method, twiml=update.twiml))

    def delete_call(self, sid: str) -> None:
        record = self.call(sid)
        if not record.is_over:
            raise ApiError(400, NOT_IN_PROGRESS, "Call is not completed. Cannot delete a call in progress.")
        del self._calls[sid]
        del self._engines[sid]

    async def aclose(self) -> None:
        """End every live call (as failed) and close the webhook client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._webhooks.aclose()


def _apply_options(record: CallRecord, update: Update) -> None:
    options = record.options
    if update.method is not None:
        options.method = update.method
    if update.status_callback is not None:
        options.status_callback = update.status_callback
    if update.status_callback_method is not None:
        options.status_callback_method = update.status_callback_method
    if update.fallback_url is not None:
        options.fallback_url = update.fallback_url
    if update.fallback_method is not None:
        options.fallback_method = update.fallback_method
    if update.time_limit is not None:
        options.time_limit = update.time_limit
