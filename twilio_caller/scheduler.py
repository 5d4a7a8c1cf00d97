"""The server's scheduler: dials scheduled calls and retries when they are due, through the
dialer's one pipeline (parser → safety → telephony), so the safety rules in force at dial
time decide — a scheduled call is a request, not an approval.

- A due call more than `scheduling.missed_after_minutes` late (the server was not running)
  is reported missed, not dialed.
- A refusal whose rule can be waited out (hours, caps, min gap) moves the call to the
  refusal's next_allowed_at when the call asked for that (`when_allowed`) or is a retry;
  any other refusal ends it as refused.
- An attempt that ends busy, no-answer, failed, or on voicemail (a machine answered) is tried
  again after `spacing_minutes` while attempts remain and `retry.on` names that outcome.

Time comes from the runtime's clock; `tick()` does one round, `run()` repeats it."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from twilio_caller.clock import isoformat
from twilio_caller.errors import RefusedError, TelephonyError, TwilioCallerError
from twilio_caller.scheduled import PREFIX, Scheduled, ScheduleBook, spacing

if TYPE_CHECKING:
    from twilio_caller.dialer import Dialer
    from twilio_caller.runtime import Runtime

log = logging.getLogger("twilio_caller.scheduler")
WAITABLE_RULES = frozenset({"calling_hours", "callee_hours", "daily_cap", "global_daily_cap", "min_gap",
                            "concurrency"})
TICK_SECONDS = 1.0
LONGEST_CALL_SECONDS = 4 * 3600.0


class Scheduler:
    def __init__(self, runtime: Runtime, dialer: Dialer) -> None:
        self._rt = runtime
        self._dialer = dialer
        self.book = ScheduleBook(runtime.store, runtime.clock)
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._watching: dict[str, asyncio.Task[None]] = {}

    def _missed_after(self) -> timedelta:
        """Read when applied: a config edit binds the next due call."""
        return timedelta(minutes=self._rt.settings_in_force().scheduling.missed_after_minutes)

    def pending(self) -> bool:
        """Something is still to be dialed or watched (the server must not idle out)."""
        return bool(self._watching) or self.book.pending() > 0

    def poke(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        await self.recover()
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - one bad round must not stop later ones
                log.exception("scheduler round failed")
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=TICK_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def close(self) -> None:
        for task in self._watching.values():
            task.cancel()
        await asyncio.gather(*self._watching.values(), return_exceptions=True)

    async def tick(self) -> None:
        now = self._rt.clock.now()
        for item in self.book.due(now):
            await self._attempt(item, now)

    async def recover(self) -> None:
        """After a restart: watch the attempts that were under way, put back the ones whose
        call never got placed (the missed rule then applies to them)."""
        for item in self.book.in_state("dialing"):
            call_id = self._placed_before_crash(item)
            if call_id is None:
                self.book.again(item.id, item.due_at, outcome=item.outcome, detail="the server restarted")
            else:
                self._watch(item.id, call_id)

    def _placed_before_crash(self, item: Scheduled) -> str | None:
        if item.claimed_at is None:
            return item.call_ids[-1] if item.call_ids else None
        adopted = self.book.call_since(item.to_number, item.claimed_at)
        if adopted is not None and adopted not in item.call_ids:
            self.book.placed(item.id, adopted)
        return adopted

    async def wait(self, scheduled_id: str, timeout: float, until: str = "end") -> dict[str, Any]:
        """The scheduled call once it is over (done, missed, refused, failed, canceled) — or,
        with until "reply", at its next news (an attempt placed or ended, a new due time) —
        or as it stands when `timeout` runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = self.book.get(scheduled_id)
        while True:
            self._changed.clear()  # before looking, so a change after the look still wakes us
            current = self.book.get(scheduled_id)
            changed = until != "end" and current != seen
            left = deadline - loop.time()
            if current.final or changed or left <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                break
        return self.status(scheduled_id)

    def status(self, scheduled_id: str) -> dict[str, Any]:
        return describe(self._rt, self.book.get(scheduled_id))

    # -- one attempt --------------------------------------------------------------------

    async def _attempt(self, item: Scheduled, now: datetime) -> None:
        late = now - item.due_at
        if late > self._missed_after():
            self.book.finish(item.id, "missed", outcome=item.outcome, from_states=("scheduled",),
                             detail=f"not dialed: it was due at {isoformat(item.due_at)} and the server was "
                                    f"not running then ({_minutes(late)} late)")
            self._notify()
            return
        if not self.book.claim(item.id):
            return
        try:
            session = await self._dialer.call(item.arguments)
        except RefusedError as exc:
            self._refused(item, exc)
        except TelephonyError as exc:
            self.book.placed(item.id, None)  # an attempt, though Twilio took no call
            self._ended(self.book.get(item.id), "failed", exc.message)
        except TwilioCallerError as exc:
            self.book.finish(item.id, "failed", outcome=None, detail=exc.message)
        except Exception:  # noqa: BLE001 - never leave it dialing for ever
            log.exception("scheduled call %s failed", item.id)
            self.book.finish(item.id, "failed", outcome=None,
                             detail="internal error while dialing; see `twilio-caller server logs`")
        else:
            self.book.placed(item.id, session.call_id)
            self._watch(item.id, session.call_id)
        self._notify()

    def _refused(self, item: Scheduled, exc: RefusedError) -> None:
        waitable = exc.rule in WAITABLE_RULES and exc.next_allowed_at is not None
        if waitable and (item.when_allowed or item.attempts_made > 0):
            assert exc.next_allowed_at is not None
            self.book.again(item.id, datetime.fromisoformat(exc.next_allowed_at), outcome=item.outcome,
                            detail=f"refused at dial time ({exc.rule}: {exc.reason}); "
                                   f"next try at {exc.next_allowed_at}")
            return
        self.book.finish(item.id, "refused", outcome=exc.rule, detail=exc.reason)

    def _watch(self, scheduled_id: str, call_id: str) -> None:
        task = asyncio.ensure_future(self._until_ended(scheduled_id, call_id))
        self._watching[scheduled_id] = task
        task.add_done_callback(lambda _: self._watching.pop(scheduled_id, None))

    async def _until_ended(self, scheduled_id: str, call_id: str) -> None:
        session = self._dialer.registry.get(call_id)
        if session is not None:
            await session.wait_until(lambda: session.ended, LONGEST_CALL_SECONDS)
        record = self._dialer.status(call_id)
        if not record["ended"]:
            return  # still live after hours: left to the dialer's own limits
        outcome = "voicemail" if record["answered_by"] == "machine" else record["status"]
        self._ended(self.book.get(scheduled_id), outcome, f"call {call_id} ended: {record['status']}")
        self._notify()

    def _ended(self, item: Scheduled, outcome: str, detail: str) -> None:
        self.book.record_outcome(item.id, outcome)
        if item.state != "dialing":
            return  # canceled meanwhile: no retry
        if outcome in item.retry.on and item.attempts_made < item.retry.attempts:
            due = self._rt.clock.now() + spacing(item.retry)
            self.book.again(item.id, due, outcome=outcome,
                            detail=f"{detail}; attempt {item.attempts_made + 1} of {item.retry.attempts} "
                                   f"at {isoformat(due)}")
            return
        self.book.finish(item.id, "done", outcome=outcome, detail=detail)

    def _notify(self) -> None:
        self._changed.set()


def describe(runtime: Runtime, item: Scheduled) -> dict[str, Any]:
    """The scheduled call as tools return it: its record and its latest attempt's call."""
    from twilio_caller.calls import CallWriter

    document = item.to_dict()
    last = CallWriter(runtime.store, runtime.clock).get(item.call_ids[-1]) if item.call_ids else None
    document["last_call"] = last
    return document


def is_scheduled_id(call_id: str) -> bool:
    return call_id.startswith(PREFIX)


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
