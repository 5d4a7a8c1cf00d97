"""Simulated time for one call. The callee's time (ringing, speech, pauses, Gather
timeouts) runs `scale` times faster than real time; HTTP toward the webhook runs in real
time and is counted one to one. A deadline (TimeLimit) cuts either kind of wait."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import TypeVar

from twilio_caller.clock import Clock

T = TypeVar("T")
WORDS_PER_SECOND = 2.5


class DeadlineReached(Exception):
    """The call's TimeLimit ran out."""


def speech_seconds(text: str) -> float:
    """How long speaking `text` takes: one second per ~2.5 words."""
    return max(len(text.split()), 1) / WORDS_PER_SECOND


class Timeline:
    def __init__(self, start: datetime, scale: float, clock: Clock) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.start = start
        self.scale = scale
        self.elapsed = 0.0
        self._clock = clock
        self._deadline: float | None = None
        self._deadline_moved = asyncio.Event()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def set_deadline(self, elapsed: float | None) -> None:
        self._deadline = elapsed
        self._deadline_moved.set()

    def remaining(self) -> float | None:
        return None if self._deadline is None else max(self._deadline - self.elapsed, 0.0)

    async def pass_time(self, seconds: float) -> None:
        """Let `seconds` of callee time pass (scaled)."""
        target = self.elapsed + max(seconds, 0.0)
        while True:
            self._check_deadline()
            stop = target if self._deadline is None else min(target, self._deadline)
            if stop <= self.elapsed:
                return
            self._deadline_moved.clear()
            await self._sleep_until(stop)

    async def run_real(self, work: Awaitable[T]) -> T:
        """Await `work` in real time, counting it one to one, cut by the deadline."""
        self._check_deadline()
        began = self._clock.monotonic()
        limit = asyncio.timeout(self.remaining())
        try:
            async with limit:
                result = await work
        except TimeoutError:
            if not limit.expired() or self._deadline is None:
                self._count_real(began)
                raise
            self.elapsed = self._deadline
            raise DeadlineReached() from None
        except BaseException:
            self._count_real(began)
            raise
        self._count_real(began)
        return result

    def _count_real(self, began: float) -> None:
        self.elapsed += max(self._clock.monotonic() - began, 0.0)
        if self._deadline is not None:
            self.elapsed = min(self.elapsed, max(self._deadline, 0.0))

    def _check_deadline(self) -> None:
        if self._deadline is not None and self.elapsed >= self._deadline:
            raise DeadlineReached()

    async def _sleep_until(self, stop: float) -> None:
        loop = asyncio.get_running_loop()
        began, origin = loop.time(), self.elapsed

        def partial() -> float:
            return min(origin + (loop.time() - began) * self.scale, stop)

        try:
            await asyncio.wait_for(self._deadline_moved.wait(), (stop - origin) / self.scale)
        except TimeoutError:
            self.elapsed = stop
        except asyncio.CancelledError:
            self.elapsed = partial()
            raise
        else:
            self.elapsed = partial()
