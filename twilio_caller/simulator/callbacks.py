"""Status callbacks: the call-progress events the application asked for, delivered in the
background so they never hold up the call, in order unless chaos says otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from twilio_caller.simulator.chaos import Chaos
from twilio_caller.simulator.records import CallRecord

Deliver = Callable[[str, str, dict[str, str]], Awaitable[None]]


class StatusCallbacks:
    def __init__(self, record: CallRecord, chaos: Chaos, deliver: Deliver) -> None:
        self._record = record
        self._chaos = chaos
        self._deliver = deliver
        self._sequence = 0
        self._queue: asyncio.Queue[dict[str, str] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def wanted(self, event: str) -> bool:
        options = self._record.options
        return options.status_callback is not None and event in options.status_callback_events

    def emit(self, event: str, params: dict[str, str]) -> None:
        if not self.wanted(event):
            return
        params = {**params, "SequenceNumber": str(self._sequence), "CallbackSource": "call-progress-events"}
        self._sequence += 1
        if self._worker is None:
            self._worker = asyncio.create_task(self._run())
        self._queue.put_nowait(params)

    async def drain(self) -> None:
        """Deliver what is left; returns once every callback has been sent."""
        if self._worker is None:
            return
        self._queue.put_nowait(None)
        await self._worker

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    async def _run(self) -> None:
        held: list[dict[str, str]] = []
        while (params := await self._queue.get()) is not None:
            if self._chaos.reorder_status_callbacks:
                held.append(params)
                continue
            await self._send(params)
        for params in reversed(held):
            await self._send(params)

    async def _send(self, params: dict[str, str]) -> None:
        copies = 2 if self._chaos.duplicate_status_callbacks else 1
        options = self._record.options
        for _ in range(copies):
            self._record.status_callbacks.append(params)
            assert options.status_callback is not None
            await self._deliver(options.status_callback_method, options.status_callback, params)
