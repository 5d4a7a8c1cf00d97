"""What the conversation core tells the other instances on one store (`SharedCalls`), without
HTTP or PostgreSQL: a fake transport, and a small honest stand-in of SharedCalls's interface
that records each outcome it is handed (and puts it in the session, as SharedCalls does) and
each "this call changed" notification with what the store holds at that moment. A status
callback, a callee's reply and a delivered line of the agent's each notify once, after the
change is on record; an answer that delivers nothing notifies nobody."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from test_conversation_core import OPENING, FakeTransport, session_for

from twilio_caller.call_status import CallStatus
from twilio_caller.calls import CallWriter
from twilio_caller.conversation import Budgets, Conversation
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import CallSession, Outcome, Speak
from twilio_caller.transport.port import Answered, Ask, Heard, Hold, Say, StatusChanged
from twilio_caller.transport.port import Ready as ReadyEvent


@dataclass(frozen=True)
class Told:
    """One notification: the call, and what the store held for it when the others were told."""

    call_id: str
    status: str
    last_said: str  # the transcript's last line


@dataclass
class RecordingShared:
    """SharedCalls's interface as the conversation uses it (`outcome`, `changed`)."""

    writer: CallWriter
    outcomes: list[tuple[str, str, str | None]] = field(default_factory=list)
    told: list[Told] = field(default_factory=list)

    async def outcome(self, session: CallSession, outcome: Outcome) -> None:
        self.outcomes.append((session.call_id, outcome.kind, outcome.text))
        await session.record_outcome(outcome)

    def changed(self, session: CallSession) -> None:
        record = self.writer.get(session.call_id)
        assert record is not None
        transcript = record["transcript"]
        self.told.append(Told(session.call_id, record["status"], transcript[-1]["text"] if transcript else ""))


def shared_core(runtime: Runtime, transport: FakeTransport) -> tuple[Conversation, RecordingShared]:
    writer = CallWriter(runtime.store, runtime.clock)
    shared = RecordingShared(writer)
    budgets = Budgets(hold_seconds=0, unsteered_seconds=600, reprompts=1)
    core = Conversation(writer, runtime.contacts, runtime.clock, budgets, OPENING, transport, shared=shared)
    return core, shared


def run(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, Any]) -> Any:
    """Run `work`, then let the telemetry it wrote in the background (a shared store) finish."""
    async def settled() -> Any:
        result = await work
        await asyncio.sleep(0)
        return result
    return loop.run_until_complete(settled())


def test_a_status_callback_is_on_record_with_its_answered_by_before_the_others_are_told(runtime, transport,
                                                                                         loop) -> None:
    core, shared = shared_core(runtime, transport)
    session = session_for(runtime, keep_open=True)
    session.status = "ringing"
    answered = StatusChanged(CallStatus.IN_PROGRESS, 2, "human", None, {"CallStatus": "in-progress"})
    assert run(loop, core.handle(session, answered)) is None
    record = CallWriter(runtime.store, runtime.clock).get(session.call_id)
    assert record is not None and record["status"] == "in-progress" and record["answered_by"] == "human"
    assert shared.told == [Told(session.call_id, "in-progress", "")]


def test_a_reply_is_handed_over_and_told_once_and_a_delivered_line_is_told_once(runtime, transport, loop) -> None:
    core, shared = shared_core(runtime, transport)
    session = session_for(runtime, keep_open=True)
    assert transport.command(run(loop, core.answer(session, Answered("human")))) == Ask((OPENING, session.message), 1)
    assert shared.told == []  # an answer that delivered none of the agent's actions changes nothing for them
    held = run(loop, core.answer(session, Heard(1, "Go ahead", 0.9, "call_core1:gather:1")))
    assert transport.command(held) == Hold(1)
    assert shared.outcomes == [(session.call_id, "reply", "Go ahead")]
    assert [o.text for o in session.outcomes] == ["Go ahead"]
    assert shared.told == [Told(session.call_id, "in-progress", "Go ahead")]
    line = Speak("Let me check.", expect_reply=False)
    session.submit(line)
    assert transport.command(run(loop, core.answer(session, ReadyEvent(1)))) == Say(("Let me check.",), 2)
    assert line.delivered.is_set()
    assert shared.told[1:] == [Told(session.call_id, "in-progress", "Let me check.")]
