"""Issue 18: what a call's conversation carries from one answer to the next, when each request
may reach another instance. Two instances in this process (two runtimes, two dialers, one
PostgreSQL schema, one manual clock: two machines with synchronised clocks); each request is
handled as the webhook handles it on a shared store — the call's session adopted and brought
up to date from the store (`Dialer.adopt`), then answered by that instance's conversation.
Each test alternates the instances and expects what one instance would do:
the unsteered budget runs from the agent's last steer wherever it happened, the
acknowledgement ("one moment") is said once and when due, and a goodbye waiting for
asynchronous machine detection is said once the result reached either instance."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from twilio_caller.call_state import CallStates
from twilio_caller.calls import CallWriter
from twilio_caller.clock import ManualClock
from twilio_caller.conversation import NOTIFY_GOODBYE, Budgets, Conversation
from twilio_caller.dialer import Dialer
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import CallSession
from twilio_caller.store.ports import NewCall
from twilio_caller.transport.port import Answered, Ask, CallLine, Command, Detected, EndCall, Heard, Hold, Ready, Say
from twilio_caller.transport.twilio.calls import Credentials, Telephony

pytest.importorskip("psycopg")
OPENING = "Hi, this is Ada's assistant."
MESSAGE = "Does Friday at ten still work?"
CLOSING = "Thanks, I'll pass that on. Goodbye."
ACKNOWLEDGEMENT = "One moment."
CALL_ID = "call_carried0001"


class FakeTransport:
    """Renders each command as a numbered token and keeps it (as tests/test_conversation_core)."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def render(self, line: CallLine, command: Command) -> str:
        self.commands.append(command)
        return json.dumps({"n": len(self.commands)})

    def command(self, document: str) -> Command:
        return self.commands[json.loads(document)["n"] - 1]


@dataclass
class Instance:
    runtime: Runtime
    dialer: Dialer
    transport: FakeTransport

    async def request(self, event: Answered | Heard | Ready | Detected) -> Command | None:
        """A webhook request for the call reaching this instance: adopt, refresh, answer."""
        session = await self.dialer.adopt(CALL_ID)
        assert session is not None
        answered = await self.dialer.conversation.handle(session, event)
        return None if answered is None else self.transport.command(answered)

    def session(self) -> CallSession:
        session = self.dialer.registry.get(CALL_ID)
        assert session is not None
        return session


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str, clock: ManualClock,
         loop: asyncio.AbstractEventLoop) -> Iterator[tuple[Instance, Instance]]:
    instances = []
    transport = FakeTransport()  # one numbering: an answer on record is read back by either instance
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        runtime = Runtime(tmp_path / name, clock=clock, environ={"TWILIO_CALLER_DATABASE_URL": postgres_url})
        unused = Credentials("AC" + "0" * 32, "token", "+13125550100", "http://127.0.0.1:9")  # never asked
        dialer = Dialer(runtime, Telephony(unused, runtime.store.ledger), "https://calls.example.com",
                        owner=f"{name}/1:x")
        assert dialer.shared is not None
        dialer.conversation = Conversation(
            CallWriter(runtime.store, clock), runtime.contacts, clock,
            Budgets(hold_seconds=0.05, unsteered_seconds=60, reprompts=1, acknowledge_after_seconds=2),
            OPENING, transport, acknowledgements=(ACKNOWLEDGEMENT,), shared=dialer.shared,
        )
        instances.append(Instance(runtime, dialer, transport))
    yield instances[0], instances[1]
    for instance in instances:
        loop.run_until_complete(instance.dialer.close())  # its read-back pool lives on this loop
        instance.runtime.close()


def place(placing: Instance, *, interactive: bool = True, async_detection: bool = False) -> None:
    """The call as `Dialer.call` records it on the placing instance, and its session there."""
    runtime = placing.runtime
    runtime.store.calls.insert(NewCall(
        id=CALL_ID, token="t0ken", to_name="Bob", to_number="+13125550101", message=MESSAGE,
        mode="interactive" if interactive else "notify", keep_open=interactive, voice="Polly.Joanna",
        language="en-US",
    ), runtime.clock.now())
    CallStates(runtime.store, runtime.clock).start(CALL_ID, placing.dialer.owner, 300,
                                                   async_detection=async_detection)
    runtime.store.calls.advance(CALL_ID, "in-progress", {}, runtime.clock.now())
    session = placing.dialer._session_from(runtime.store.calls.get(CALL_ID), "in-progress")
    session.detecting = async_detection
    placing.dialer.registry.add(session)


def transcript(instance: Instance) -> list[str]:
    return [turn["text"] for turn in instance.runtime.store.calls.turns(CALL_ID) if turn["speaker"] == "assistant"]


def test_the_unsteered_budget_runs_from_the_last_steer_on_either_instance(pair, clock, loop) -> None:
    a, b = pair
    place(a)
    clock.advance(30)  # the phone rings, the opening is said on a
    assert loop.run_until_complete(a.request(Answered("human"))) == Ask((OPENING, MESSAGE), 1)
    clock.advance(20)
    assert loop.run_until_complete(b.request(Heard(1, "Sure", 0.9, f"{CALL_ID}:gather:1"))) == Hold(1)
    clock.advance(40)  # 40 s since the reply (90 s since a placed the call): inside the budget
    assert loop.run_until_complete(a.request(Ready(1))) == Hold(2, (ACKNOWLEDGEMENT,))
    clock.advance(25)  # 65 s since the reply, on b as if it never served the call before
    b.dialer.registry.discard(CALL_ID)
    assert loop.run_until_complete(b.request(Ready(2))) == EndCall((CLOSING,))


def test_a_wait_on_one_instance_restarts_the_budget_for_the_other(pair, clock, loop) -> None:
    a, b = pair
    place(a)
    loop.run_until_complete(a.request(Answered("human")))
    loop.run_until_complete(b.request(Heard(1, "Sure", 0.9, f"{CALL_ID}:gather:1")))
    clock.advance(50)
    waited = loop.run_until_complete(b.dialer.wait(CALL_ID, "reply", 0.01))  # the agent steers through b
    assert waited["reply"]["text"] == "Sure"
    clock.advance(50)  # 100 s since the reply, 50 s since the agent's wait
    assert loop.run_until_complete(a.request(Ready(1))) == Hold(2, (ACKNOWLEDGEMENT,))


def test_the_acknowledgement_is_said_once_when_due_whichever_instance_holds(pair, clock, loop) -> None:
    a, b = pair
    place(a)
    loop.run_until_complete(a.request(Answered("human")))
    assert loop.run_until_complete(b.request(Heard(1, "Let me see", 0.9, f"{CALL_ID}:gather:1"))) == Hold(1)
    clock.advance(3)  # due 2 s after the callee stopped speaking
    assert loop.run_until_complete(a.request(Ready(1))) == Hold(2, (ACKNOWLEDGEMENT,))
    assert loop.run_until_complete(b.request(Ready(2))) == Hold(3)
    assert loop.run_until_complete(a.request(Ready(3))) == Hold(4)
    assert transcript(a).count(ACKNOWLEDGEMENT) == 1


@pytest.mark.parametrize("goodbye_on", ["placing", "detecting"])
def test_a_pending_goodbye_is_said_once_after_detection_reached_the_other_instance(
        pair, clock, loop, goodbye_on: str) -> None:
    a, b = pair
    place(a, interactive=False, async_detection=True)
    assert loop.run_until_complete(a.request(Answered(None))) == Say((OPENING, MESSAGE), 1)
    assert loop.run_until_complete(b.request(Detected("human", {"AnsweredBy": "human"}))) is None
    last = a if goodbye_on == "placing" else b
    assert loop.run_until_complete(last.request(Ready(1))) == EndCall((NOTIFY_GOODBYE,))
    other = b if last is a else a
    loop.run_until_complete(other.request(Ready(1)))  # a replay on the other instance: the same answer
    assert transcript(a) == [OPENING, MESSAGE, NOTIFY_GOODBYE]
