"""A small agent runtime driving a multi-turn phone call through twilio-caller's tools,
offline, against the built-in Twilio simulator.

It does what an agent runtime does with a skill: it loads skill.yaml, offers its tools to
the model, and runs each tool call the model makes through the manifest (arguments
validated against the tool's schema, results checked against its `returns`). The "model"
here is a fixed policy, so the example runs the same way every time:

    add_contact → call(keep_open) → say … → hangup

Run it:  python examples/agent_loop.py [--callee examples/callees/dinner.yaml] [--time-scale 20]

Nothing touches your real home or the network: a throw-away home holds the config and the
contact book, and the server runs in this process in simulate mode."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from twilio_caller.errors import TwilioCallerError
from twilio_caller.export import export
from twilio_caller.invocation import Invocation
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime
from twilio_caller.server.runner import ServerRunner, ServerThread

HERE = Path(__file__).resolve().parent
CONTACT = {"name": "Contact1", "number": "312-555-0101", "timezone": "America/Chicago"}
CONFIG = """\
safety:
  calling_hours: "00:00-24:00"
  callee_hours: null
webhook:
  port: 0
"""


SIMULATED = Invocation(simulate=True)  # every call goes to the simulator in this process


@dataclass
class Agent:
    """Runs the model's tool calls through the manifest and shows each one."""

    runtime: Runtime
    calls: list[str] = field(default_factory=list)

    def tool(self, name: str, /, **arguments: Any) -> dict[str, Any]:
        self.calls.append(name)
        print(f"→ {name} {json.dumps(arguments, ensure_ascii=False)}", flush=True)
        try:
            result = invoke(name, arguments, self.runtime, SIMULATED)
        except TwilioCallerError as exc:  # what the model sees: the error document
            result = exc.to_dict()
        print(f"← {json.dumps(_shown(result), ensure_ascii=False)}", flush=True)
        return result


@dataclass(frozen=True)
class Policy:
    """The stand-in for a model: what to say first, next, and last."""

    opening: str = "Robert is running late for dinner, about twenty minutes. Is that alright?"
    follow_ups: tuple[str, ...] = (
        "He'll be there by eight fifteen.",
        "He says please go ahead and start, he'll catch up.",
    )
    goodbye: str = "Thanks, I'll tell him. Goodbye!"


def converse(agent: Agent, policy: Policy, to: str) -> dict[str, Any]:
    """Talk while the callee answers; stop when the call ends, and hang up on silence."""
    result = agent.tool("call", to=to, message=policy.opening, keep_open=True, timeout_seconds=30)
    for line in policy.follow_ups:
        if "error" in result or result["ended"] or result["reply"] is None:
            break
        result = agent.tool("say", call_id=result["call_id"], message=line, timeout_seconds=30)
    if "error" in result or result["ended"]:
        return result
    return agent.tool("hangup", call_id=result["call_id"], message=policy.goodbye)


def run(callee_path: Path, time_scale: float) -> dict[str, Any]:
    callee = yaml.safe_load(callee_path.read_text(encoding="utf-8"))
    home = Path(tempfile.mkdtemp(prefix="twilio-caller-agent-loop-"))
    try:
        (home / "config.yaml").write_text(CONFIG, encoding="utf-8")
        runtime = Runtime(home, environ={})
        offered = export("anthropic")  # the tool definitions a model would be given
        print(f"tools offered to the model: {', '.join(tool['name'] for tool in offered)}")
        agent = Agent(runtime)
        contact = agent.tool("add_contact", **CONTACT)
        runner = ServerRunner(Runtime(home, environ={}), simulate=True, idle_exit=False,
                              time_scale=time_scale, callees={contact["number"]: callee})
        with ServerThread(runner):
            final = converse(agent, Policy(), contact["name"])
        runtime.close()
        summary = _summary(final, agent.calls)
        print("summary " + json.dumps(summary, ensure_ascii=False))
        return summary
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _summary(final: dict[str, Any], calls: list[str]) -> dict[str, Any]:
    if "error" in final:
        return {"tool_calls": calls, "error": final["error"]}
    return {
        "tool_calls": calls,
        "status": final["status"],
        "ended": final["ended"],
        "voicemail_left": final["voicemail_left"],
        "transcript": [f"{turn['speaker']}: {turn['text']}" for turn in final["transcript"]],
    }


def _shown(result: dict[str, Any]) -> dict[str, Any]:
    """The fields worth a line on screen (the model receives the whole result)."""
    if "call_id" not in result:
        return result
    keys = ("call_id", "status", "reply", "no_reply_reason", "ended", "voicemail_left")
    return {key: result[key] for key in keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callee", type=Path, default=HERE / "callees" / "dinner.yaml",
                        help="callee script (YAML) for the simulated person")
    parser.add_argument("--time-scale", type=float, default=20.0,
                        help="how much faster than real time the simulated callee talks")
    options = parser.parse_args(argv)
    summary = run(options.callee, options.time_scale)
    return 1 if "error" in summary else 0


if __name__ == "__main__":
    sys.exit(main())
