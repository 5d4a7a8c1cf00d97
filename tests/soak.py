"""The soak: many concurrent keep_open calls of several turns each through the simulator,
then every transcript checked — no turn lost, none duplicated. The suite runs it small;
`TWILIO_CALLER_SOAK_CALLS=200 bin/test tests/test_soak.py` runs it full size
(200 calls of 5 turns)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from conftest import LiveServer


def one_call(server: LiveServer, name: str, turns: int) -> dict[str, Any]:
    first = server.tool("call", to=name, message=f"Hello {name}", keep_open=True, timeout_seconds=120)
    assert first["reply"]["text"] == f"{name} reply 0", first
    for turn in range(1, turns):
        answer = server.tool("say", call_id=first["call_id"], message=f"{name} question {turn}",
                             timeout_seconds=120)
        assert answer["reply"]["text"] == f"{name} reply {turn}", answer
    return server.tool("hangup", call_id=first["call_id"], message="Bye")


def soak(server: LiveServer, calls: int, turns: int) -> list[dict[str, Any]]:
    names = [f"Soak{n}" for n in range(calls)]
    for index, name in enumerate(names):
        number = f"+1312556{index:04d}"
        server.runtime.contacts.add(name, number)
        replies = [{"say": f"{name} reply {turn}"} for turn in range(turns)]
        server.script_number(number, replies=replies)
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(calls, 64)) as pool:
        results = list(pool.map(lambda name: one_call(server, name, turns), names))
    for name, result in zip(names, results, strict=True):
        callee = [t["text"] for t in result["transcript"] if t["speaker"] == "callee"]
        assistant = [t["text"] for t in result["transcript"] if t["speaker"] == "assistant"]
        assert callee == [f"{name} reply {turn}" for turn in range(turns)], result["call_id"]
        assert assistant == ["Hi, this is Yamani, Robert's AI assistant.", f"Hello {name}",
                             *(f"{name} question {turn}" for turn in range(1, turns)), "Bye"]
        assert result["status"] == "completed"
    return results

