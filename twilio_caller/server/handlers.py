"""The tools as the server runs them for clients in other processes (the control API). Each is
named in skill.yaml beside the tool (`served_by`), takes the server's `Served` context and the
tool's validated arguments as keywords, and returns the tool's result — or, for a streamed
`call`, the response that streams its progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

from twilio_caller.dialer import Dialer
from twilio_caller.errors import InvalidInputError
from twilio_caller.scheduler import Scheduler, is_scheduled_id

BeforeDial = Callable[[str, dict[str, Any] | None], None]


@dataclass(frozen=True)
class Served:
    """What a served tool runs with: the server's dialer and scheduler, and this request's
    extras (a simulated callee's script, whether progress is streamed)."""

    dialer: Dialer
    scheduler: Scheduler | None
    before_dial: BeforeDial | None
    body: dict[str, Any]
    stream: bool

    def scheduled(self, call_id: str) -> Scheduler | None:
        """The scheduler when `call_id` names a scheduled call (sched_…), else None."""
        return self.scheduler if self.scheduler is not None and is_scheduled_id(call_id) else None


async def call(served: Served, **arguments: Any) -> Response:
    callee = served.body.get("callee")
    before_dial = served.before_dial
    hook = (lambda number: before_dial(number, callee)) if before_dial else None
    dialer = served.dialer
    session = await dialer.call(arguments, before_dial=hook, streamed=served.stream)
    outcome = asyncio.ensure_future(
        dialer.first_result(session, wait=arguments["wait"], timeout=arguments["timeout_seconds"])
    )
    if not served.stream:
        return JSONResponse(await outcome)

    async def lines() -> AsyncIterator[bytes]:
        sent = 0
        while True:
            session.progressed.clear()
            for event in session.events[sent:]:
                yield _line({"progress": event})
            sent = len(session.events)
            if outcome.done():
                break
            waiter = asyncio.ensure_future(session.progressed.wait())
            await asyncio.wait([outcome, waiter], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        for event in session.events[sent:]:
            yield _line({"progress": event})
        yield _line({"result": outcome.result()})

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def say(served: Served, *, call_id: str, message: str, expect_reply: bool,
              timeout_seconds: float, language: str | None = None) -> dict[str, Any]:
    _not_scheduled(served, "say", call_id)
    return await served.dialer.say(call_id, message, expect_reply, timeout_seconds, language)


async def wait(served: Served, *, call_id: str, until: str, timeout_seconds: float) -> dict[str, Any]:
    scheduler = served.scheduled(call_id)
    if scheduler is not None:
        return await scheduler.wait(call_id, timeout_seconds, until)
    return await served.dialer.wait(call_id, until, timeout_seconds)


async def hangup(served: Served, *, call_id: str, message: str | None = None) -> dict[str, Any]:
    _not_scheduled(served, "hangup", call_id)
    return await served.dialer.hangup(call_id, message)


async def press(served: Served, *, call_id: str, digits: str) -> dict[str, Any]:
    _not_scheduled(served, "press", call_id)
    return await served.dialer.press(call_id, digits)


async def call_status(served: Served, *, call_id: str) -> dict[str, Any]:
    scheduler = served.scheduled(call_id)
    if scheduler is not None:
        return scheduler.status(call_id)
    return served.dialer.status(call_id)


async def reconcile_calls(served: Served) -> dict[str, Any]:
    return {"changed": [*served.dialer.take_unreported(), *await served.dialer.reconcile()]}


def _not_scheduled(served: Served, name: str, call_id: str) -> None:
    """The live-call tools take a call's id; a scheduled call's is refused, naming what to use."""
    if served.scheduled(call_id) is not None:
        raise InvalidInputError(f"{name} needs the call_id of a call; {call_id} is a scheduled "
                                "call (call_status shows its calls)", field="call_id")


def _line(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode() + b"\n"
