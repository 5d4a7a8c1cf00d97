"""The command grammar: a corpus of sentences with their expected parse, the spoken form of
relayed messages, and run_command end to end (dry runs, clarifications, a live call)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from twilio_caller import manifest
from twilio_caller.sentences import run_command
from twilio_caller.sentences.context import Context, KnownCall
from twilio_caller.sentences.grammar import parse
from twilio_caller.sentences.rephrase import to_second_person
from twilio_caller.errors import RefusedError
from twilio_caller.invocation import Invocation

CORPUS = yaml.safe_load((Path(__file__).with_name("sentences_corpus.yaml")).read_text(encoding="utf-8"))
CONTEXTS = {
    name: Context(contacts=CORPUS["contacts"], owner=CORPUS["owner"],
                  calls=[KnownCall(**call) for call in calls],
                  now=datetime.fromisoformat(CORPUS["now"]), timezone=CORPUS["timezone"])
    for name, calls in CORPUS["contexts"].items()
}
CASES = [pytest.param(case, id=f"{index:02d}-{case['text'][:40]}") for index, case in enumerate(CORPUS["cases"])]

# The skill.yaml entry for run_command (until it is in skill.yaml, the tests check results
# against this; afterwards against the manifest's own entry).
RUN_COMMAND_ENTRY = yaml.safe_load("""
name: run_command
parameters:
  type: object
  additionalProperties: false
  required: [text]
  properties:
    text: {type: string, minLength: 1, maxLength: 2000}
    dry_run: {type: boolean, default: false}
returns:
  type: object
  additionalProperties: false
  required: [parsed, result]
  properties:
    parsed:
      oneOf:
        - type: object
          additionalProperties: false
          required: [tool, arguments]
          properties:
            tool: {type: string}
            arguments: {type: object}
        - type: object
          additionalProperties: false
          required: [clarify]
          properties:
            clarify:
              type: object
              additionalProperties: false
              required: [reason, question, options]
              properties:
                reason: {enum: [unknown_contact, ambiguous_contact, missing_contact, missing_message,
                                no_live_call, several_live_calls, no_call, not_understood,
                                several_contacts, message_too_long]}
                question: {type: string, minLength: 1}
                options: {type: array, items: {type: string, minLength: 1}}
    result: {type: [object, "null"]}
""")


def run_command_spec() -> manifest.ToolSpec:
    declared = manifest.load_manifest().tools.get("run_command")
    if declared is not None:
        return declared
    return manifest.ToolSpec(name="run_command", description="", entrypoint="twilio_caller.sentences:run_command",
                             side_effecting=True, parameters=RUN_COMMAND_ENTRY["parameters"],
                             returns=RUN_COMMAND_ENTRY["returns"])


def context_of(case: dict[str, Any]) -> Context:
    return CONTEXTS[case.get("context", "idle")]


# --- the corpus --------------------------------------------------------------------------


def test_the_corpus_is_large_and_covers_every_kind_of_answer() -> None:
    parses = [parse(case["text"], context_of(case)) for case in CORPUS["cases"]]
    assert len(parses) >= 60
    tools = {p["tool"] for p in parses if "tool" in p}
    assert tools >= {"call", "say", "hangup", "wait", "add_contact", "remove_contact", "update_contact",
                     "list_contacts", "list_calls", "call_status", "safety_rules"}
    reasons = {p["clarify"]["reason"] for p in parses if "clarify" in p}
    assert reasons == set(run_command_spec().returns["properties"]["parsed"]["oneOf"][1]
                          ["properties"]["clarify"]["properties"]["reason"]["enum"])


def test_every_case_written_in_the_corpus_is_run_through_the_parser() -> None:
    """No case lost to a YAML slip (a case nested in another, a misspelt key): each `- text:`
    of the file is one parametrized parse with an expected result."""
    raw = (Path(__file__).with_name("sentences_corpus.yaml")).read_text(encoding="utf-8")
    assert len(CASES) == raw.count("\n  - text: ")
    for case in CORPUS["cases"]:
        assert set(case) <= {"text", "parse", "context"} and {"text", "parse"} <= set(case)
        assert ("tool" in case["parse"]) != ("clarify" in case["parse"])


@pytest.mark.parametrize("case", CASES)
def test_each_sentence_parses_as_expected(case: dict[str, Any]) -> None:
    assert parse(case["text"], context_of(case)) == case["parse"]


@pytest.mark.parametrize("case", [c for c in CASES if "tool" in c.values[0]["parse"]])
def test_every_parsed_tool_call_is_valid_for_the_manifest(case: dict[str, Any]) -> None:
    parsed = parse(case["text"], context_of(case))  # what the parser gives, not what the corpus says
    assert parsed["tool"] == case["parse"]["tool"]
    assert manifest.load_manifest().tool(parsed["tool"]).validate_arguments(parsed["arguments"]) is not None


@pytest.mark.parametrize("case", [c for c in CASES if "clarify" in c.values[0]["parse"]])
def test_every_option_of_a_clarification_parses_without_ambiguity(case: dict[str, Any]) -> None:
    for option in case["parse"]["clarify"]["options"]:
        assert "tool" in parse(option, context_of(case)), option


def test_parsing_is_deterministic_and_never_raises_on_odd_input() -> None:
    context = CONTEXTS["live"]
    for text in ["", "   ", "?!", "call", "call and", "tell", "add", "add 312", "call ,,,", "hang up on",
                 "call Contact1 and tell her", "ask", "say", "x" * 3000, "call 555", "remove",
                 "call Contact1 and ask her", "call Contact1 and say"]:
        first = parse(text, context)
        assert first == parse(text, context)
        assert ("tool" in first) != ("clarify" in first)


# --- speaking on the owner's behalf ------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "pronoun", "spoken"),
    [
        ("she is late", "her", "you are late"),
        ("she's been waiting", "her", "you've been waiting"),
        ("he never calls his mother", "him", "you never call your mother"),
        ("I'll pick her up", "her", "I'll pick you up"),
        ("I have her keys", "her", "I have your keys"),
        ("they're welcome to join", "them", "you're welcome to join"),
        ("he watches too much TV", "her", "he watches too much TV"),
        ("she tries hard", "her", "you try hard"),
        ("he misses you", "him", "you miss you"),
        ("the car is his", "him", "the car is yours"),
    ],
)
def test_words_about_the_callee_become_second_person(message: str, pronoun: str, spoken: str) -> None:
    assert to_second_person(message, pronoun) == spoken


def test_the_owner_is_named_from_the_config(runtime, write_config) -> None:
    write_config("identity: {owner_name: Alex}\n")
    runtime.contacts.add("Contact1", "312-555-0101", "America/Chicago")
    result = run_command(runtime, Invocation.from_environment(runtime.environ), text="call Contact1 and tell her I'll be late", dry_run=True)
    assert result["parsed"]["arguments"]["message"] == "Alex asked me to pass on a message: I'll be late."
    assert result["result"]["message"] == "Alex asked me to pass on a message: I'll be late."


# --- run_command -------------------------------------------------------------------------


def check(result: dict[str, Any]) -> dict[str, Any]:
    run_command_spec().validate_result(result)
    return result


def test_run_command_runs_the_parsed_tool(runtime) -> None:
    added = check(run_command(runtime, Invocation.from_environment(runtime.environ), text="add Contact9 at 312-555-0109"))
    assert added["parsed"] == {"tool": "add_contact", "arguments": {"name": "Contact9", "number": "312-555-0109"}}
    assert added["result"]["number"] == "+13125550109"
    listed = check(run_command(runtime, Invocation.from_environment(runtime.environ), text="show my contacts"))
    assert [c["name"] for c in listed["result"]["contacts"]] == ["Contact9"]
    removed = check(run_command(runtime, Invocation.from_environment(runtime.environ), text="delete contact9"))
    assert removed["result"]["removed"]["name"] == "Contact9"
    assert runtime.contacts.all() == []


def test_a_dry_run_call_returns_the_safety_decision_and_dials_nothing(runtime) -> None:
    runtime.contacts.add("Contact1", "312-555-0101", "America/Chicago")
    result = check(run_command(runtime, Invocation.from_environment(runtime.environ), text="call Contact1 and ask her if she's free tonight", dry_run=True))
    assert result["parsed"]["arguments"] == {
        "to": "Contact1", "message": "Robert would like to know: are you free tonight?", "interactive": True,
    }
    assert result["result"]["dry_run"] is True and result["result"]["allowed"] is True
    assert result["result"]["mode"] == "interactive"
    assert runtime.calls.list() == []


def test_a_dry_run_changes_nothing_else(runtime) -> None:
    result = check(run_command(runtime, Invocation.from_environment(runtime.environ), text="add Contact9 at 312-555-0109", dry_run=True))
    assert result["parsed"]["tool"] == "add_contact" and result["result"] is None
    assert runtime.contacts.all() == []


def test_a_refused_dry_run_is_the_refusal(runtime) -> None:
    with pytest.raises(RefusedError) as refused:
        run_command(runtime, Invocation.from_environment(runtime.environ), text="call 911 and say help", dry_run=True)
    assert refused.value.rule == "never_dial"


def test_a_clarification_runs_nothing(runtime) -> None:
    runtime.contacts.add("Contact1", "312-555-0101")
    result = check(run_command(runtime, Invocation.from_environment(runtime.environ), text="call Contct1 and tell her hi"))
    assert result == {
        "parsed": {"clarify": {
            "reason": "unknown_contact",
            "question": "There is no contact named 'Contct1'. Did you mean Contact1?",
            "options": ["call Contact1 and tell her hi"],
        }},
        "result": None,
    }
    assert runtime.calls.list() == []


def test_run_command_matches_its_declared_signature() -> None:
    assert manifest.signature_matches(run_command_spec()) == []


def test_a_conversation_by_sentences(live_server) -> None:
    rt = live_server.runtime
    live_server.script("Contact6", replies=[{"say": "Sure, what's up?"}, {"say": "Got it, thanks"}])
    first = check(run_command(rt, Invocation.from_environment(rt.environ), text="call Contact6 and tell him the code is 1234 and stay on the line"))
    assert first["result"]["reply"]["text"] == "Sure, what's up?" and first["result"]["ended"] is False
    call_id = first["result"]["call_id"]
    second = check(run_command(rt, Invocation.from_environment(rt.environ), text="say the gate code changes on Monday"))
    assert second["parsed"] == {"tool": "say", "arguments": {
        "call_id": call_id, "message": "The gate code changes on Monday."}}
    assert second["result"]["reply"]["text"] == "Got it, thanks"
    ended = check(run_command(rt, Invocation.from_environment(rt.environ), text="hang up and say bye for now"))
    assert ended["parsed"] == {"tool": "hangup", "arguments": {"call_id": call_id, "message": "Bye for now."}}
    assert ended["result"]["status"] == "completed" and ended["result"]["ended"] is True
    after = check(run_command(rt, Invocation.from_environment(rt.environ), text="hang up"))
    assert after["parsed"]["clarify"]["reason"] == "no_live_call"


def test_an_interactive_call_by_sentence_returns_the_reply(live_server) -> None:
    live_server.script("Contact7", replies=[{"say": "Yes, Friday works", "confidence": 0.9}])
    result = check(run_command(live_server.runtime, Invocation.from_environment(live_server.runtime.environ), text="ring contact7 and ask her if Friday works"))
    assert result["parsed"]["arguments"]["interactive"] is True
    assert result["result"]["reply"] == {"text": "Yes, Friday works", "confidence": 0.9, "untrusted": True}
    spoken = [turn["text"] for turn in result["result"]["transcript"] if turn["speaker"] == "assistant"]
    assert "Robert would like to know whether Friday works." in spoken
    log = check(run_command(live_server.runtime, Invocation.from_environment(live_server.runtime.environ), text="show calls with Contact7"))
    assert [call["call_id"] for call in log["result"]["calls"]] == [result["result"]["call_id"]]


def test_the_message_limit_counts_the_words_the_user_wrote(runtime) -> None:
    runtime.contacts.add("Contact1", "312-555-0101", "America/Chicago")
    words = ("I'll be late because the trains are stuck " * 30)[:1000].strip()
    fits = check(run_command(runtime, Invocation.from_environment(runtime.environ), text=f"call Contact1 and tell her {words}", dry_run=True))
    spoken = fits["parsed"]["arguments"]["message"]
    assert len(spoken) > 1000 and spoken.endswith(words + ".")  # the framing is not counted
    assert fits["result"]["allowed"] is True and fits["result"]["message"] == spoken
    over = check(run_command(runtime, Invocation.from_environment(runtime.environ), text=f"call Contact1 and tell her {words} and more"))
    assert over["parsed"]["clarify"]["reason"] == "message_too_long"
    assert f"{len(words) + len(' and more'):,} characters long" in over["parsed"]["clarify"]["question"]
    assert over["result"] is None and runtime.calls.list() == []
