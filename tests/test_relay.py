"""ConversationRelay (issue 17): the translations (the <Connect> TwiML, commands as Twilio's
documented messages) and a call's socket driving the real conversation core and store, in
process over the webhook's route table (Starlette's test client: no network) — a reply, a
kept-open call with a said line, an interruption, keys and the agent's hang-up — plus hostile
sockets: a forged or missing signature, a wrong token, a second socket, no setup, oversize and
flooding messages."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from twilio.request_validator import RequestValidator

from twilio_caller.calls import CallWriter
from twilio_caller.conversation import Budgets, Conversation
from twilio_caller.runtime import Runtime
from twilio_caller.sessions import CallSession, HangUp, Registry, Speak
from twilio_caller.store.ports import NewCall
from twilio_caller.transport.port import Ask, EndCall, Hold, Line, Say, SendDigits, Speech
from twilio_caller.transport.twilio import relay
from twilio_caller.transport.twilio.relay_socket import Limits, RelaySockets
from twilio_caller.transport.twilio.routes import ROUTES

AUTH = "relay-test-token"
PUBLIC = "https://calls.example.com"
OPENING = "Hi, this is Ada's assistant."
MESSAGE = "Does Friday at ten still work?"
CLOSING = "Thanks, I'll pass that on. Goodbye."
NUMBER = "+13125550101"
SID = "CA" + "1" * 32
SPEECH = Speech("Polly.Joanna", None, "en-US", "auto", 5, "phone_call", ("Friday",))


# -- the translations -------------------------------------------------------------------------


def test_connect_hands_the_call_to_the_socket_with_the_voice_and_language() -> None:
    document = ET.fromstring(relay.connect(SPEECH, "wss://calls.example.com/relay/c/t", PUBLIC + "/handoff"))
    connect = document.find("Connect")
    assert connect is not None and connect.get("action") == PUBLIC + "/handoff"
    block = connect.find("ConversationRelay")
    assert block is not None
    assert block.get("url") == "wss://calls.example.com/relay/c/t"
    assert (block.get("ttsProvider"), block.get("voice"), block.get("language")) == ("Amazon", "Joanna", "en-US")
    assert block.get("hints") == "Friday"


def test_only_speech_interrupts_keys_reach_the_socket_and_a_greeting_is_spoken_first() -> None:
    """What Twilio is told beyond the voice: a key pressed while the assistant speaks does not
    cut it (ConversationRelay's default would: `any`), keys are sent to the socket (default:
    not), and the welcomeGreeting, when there is one, is cut by speech only."""
    def block(greeting: str | None) -> ET.Element:
        document = ET.fromstring(relay.connect(SPEECH, "wss://calls.example.com/relay/c/t", PUBLIC + "/h", greeting))
        found = document.find("Connect/ConversationRelay")
        assert found is not None
        return found

    greeted = block("Hi, this is Ada's assistant.")
    assert (greeted.get("interruptible"), greeted.get("dtmfDetection")) == ("speech", "true")
    assert greeted.get("welcomeGreeting") == "Hi, this is Ada's assistant."
    assert greeted.get("welcomeGreetingInterruptible") == "speech"
    plain = block(None)
    assert (plain.get("interruptible"), plain.get("dtmfDetection")) == ("speech", "true")
    assert "welcomeGreeting" not in plain.attrib and "welcomeGreetingInterruptible" not in plain.attrib


def test_twilios_own_voice_names_leave_the_provider_to_twilio() -> None:
    assert relay.tts_voice("alice") == (None, None)
    assert relay.tts_voice("Google.en-US-Neural2-F") == ("Google", "en-US-Neural2-F")


def test_said_lines_stream_sentence_by_sentence_with_last_on_the_final_piece() -> None:
    plan = relay.read_plan(relay.render(Say(("Hello there. How are you?", "Bye!"), resume=4)))
    assert [(m["token"], m["last"]) for m in plan.messages] == [
        ("Hello there. ", False), ("How are you? ", False), ("Bye!", True)]
    assert (plan.ready, plan.listen, plan.end) == (4, None, False)


def test_each_command_has_its_messages_and_what_follows() -> None:
    ask = relay.read_plan(relay.render(Ask((Line("Hi.", "https://a.example.com/x.mp3"), "Ok?"), turn=2)))
    assert [m["type"] for m in ask.messages] == ["play", "text"] and ask.listen == 2
    assert relay.read_plan(relay.render(Hold(7))) == relay.Plan((), ready=7)
    digits = relay.read_plan(relay.render(SendDigits("1w2", 3)))
    assert digits.messages == ({"type": "sendDigits", "digits": "1w2"},) and digits.ready == 3
    end = relay.read_plan(relay.render(EndCall(("Goodbye.",))))
    assert [m["type"] for m in end.messages] == ["text", "end"] and end.end
    assert relay.read_plan("<Response/>") == relay.Plan((), end=True)


@pytest.mark.parametrize("raw", ['{"type": "prompt", "voicePrompt": 5}', "[1]", "not json",
                                 '{"type": "dtmf", "digit": "x"}', '{"type": "nope"}', '{"type": "setup"}'])
def test_malformed_messages_are_ignored(raw: str) -> None:
    assert relay.parse(raw) is None


# -- a call's socket ----------------------------------------------------------------------------


class Endpoints:
    def __init__(self, sockets: RelaySockets) -> None:
        self.sockets = sockets

    async def relay(self, websocket: WebSocket) -> None:
        await self.sockets.serve(websocket)


class Line_:
    """One call on a socket app: the session, the signed socket path, the store's view."""

    def __init__(self, runtime: Runtime, keep_open: bool, limits: Limits) -> None:
        self.runtime = runtime
        runtime.store.calls.insert(NewCall(
            id="call_relay1", token="t0ken", to_name="Bob", to_number=NUMBER, message=MESSAGE,
            mode="interactive", keep_open=keep_open, voice=SPEECH.voice, language="en-US",
        ), runtime.clock.now())
        self.session = CallSession(
            call_id="call_relay1", token="t0ken", to_number=NUMBER, to_name="Bob", message=MESSAGE,
            interactive=True, keep_open=keep_open, closing=CLOSING, speech=SPEECH, reprompts_left=1,
            status="in-progress", twilio_sid=SID, engine="relay")
        registry = Registry()
        registry.add(self.session)
        writer = CallWriter(runtime.store, runtime.clock)
        core = Conversation(writer, runtime.contacts, runtime.clock,
                            Budgets(hold_seconds=0.05, unsteered_seconds=600, reprompts=1),
                            OPENING, relay.EngineRenderer(relay_only()))
        validator = RequestValidator(AUTH)
        sockets = RelaySockets(registry_sessions(registry), lambda: core, validator.validate, PUBLIC, limits)
        app = Starlette(routes=list(ROUTES))
        app.state.endpoints = Endpoints(sockets)
        self.client = TestClient(app)
        self.path = "/relay/call_relay1/t0ken"
        self.signature = validator.compute_signature("wss://calls.example.com" + self.path, {})

    def connect(self, path: str | None = None, signature: str | None = None) -> Any:
        return self.client.websocket_connect(
            path or self.path, headers={"X-Twilio-Signature": self.signature if signature is None else signature})

    def transcript(self) -> list[tuple[str, str]]:
        record = CallWriter(self.runtime.store, self.runtime.clock).get("call_relay1")
        assert record is not None
        return [(turn["speaker"], turn["text"]) for turn in record["transcript"]]

    def events(self, kind: str) -> list[dict[str, Any]]:
        rows = self.runtime.store.query(
            "SELECT payload FROM events WHERE call_id = ? AND kind = ?", ("call_relay1", kind))
        return [json.loads(row[0]) for row in rows]


def registry_sessions(registry: Registry) -> Any:
    """The sessions of one server's registry, found by call_id and token (as its webhook does)."""
    async def find(call_id: str, token: bytes) -> CallSession | None:
        session = registry.get(call_id)
        return session if session is not None and secrets.compare_digest(session.token.encode(), token) else None
    return find


class relay_only:
    """The Gather renderer must never be asked for a relay call."""

    def render(self, line: Any, command: Any) -> str:
        raise AssertionError("a relay call was rendered as TwiML")


def setup_message() -> str:
    return json.dumps({"type": "setup", "callSid": SID, "from": "+13125550100", "to": NUMBER,
                       "direction": "outbound-api", "customParameters": {}})


def spoken(ws: Any) -> tuple[str, list[dict[str, Any]]]:
    """The text of one said turn (up to its `last` token, or an `end`) and its messages."""
    messages: list[dict[str, Any]] = []
    while True:
        message = ws.receive_json()
        messages.append(message)
        if message["type"] == "end" or (message["type"] == "text" and message["last"]):
            return "".join(m.get("token", "") for m in messages), messages


@pytest.fixture
def line(runtime: Runtime) -> Iterator[Line_]:
    built = Line_(runtime, keep_open=False, limits=Limits(setup_seconds=0.2, silence_seconds=5))
    with built.client:
        yield built


@pytest.fixture
def open_line(runtime: Runtime) -> Iterator[Line_]:
    built = Line_(runtime, keep_open=True, limits=Limits(setup_seconds=0.2, silence_seconds=5))
    with built.client:
        yield built


def test_a_reply_over_the_socket_is_recorded_then_closed_with_end(line: Line_) -> None:
    with line.connect() as ws:
        ws.send_text(setup_message())
        said, _ = spoken(ws)
        assert said == f"{OPENING} {MESSAGE}"
        ws.send_text(json.dumps({"type": "prompt", "voicePrompt": "Yes, Friday", "last": False}))
        ws.send_text(json.dumps({"type": "prompt", "voicePrompt": "Yes, Friday works", "last": True}))
        closing, messages = spoken(ws)
        assert closing == CLOSING
        assert ws.receive_json()["type"] == "end"
    assert line.transcript() == [("assistant", OPENING), ("assistant", MESSAGE),
                                 ("callee", "Yes, Friday works"), ("assistant", CLOSING)]
    assert [(o.kind, o.text) for o in line.session.outcomes] == [("reply", "Yes, Friday works")]
    assert line.session.hung_up_by_us


@pytest.mark.parametrize("prompt", [{"voicePrompt": "Yes, Friday works"},  # no `last`: a final prompt
                                    {"voicePrompt": "x" * 4096, "last": True}])  # the longest field taken
def test_a_prompt_without_last_or_of_the_longest_length_is_the_reply(line: Line_, prompt: dict[str, Any]) -> None:
    with line.connect() as ws:
        ws.send_text(setup_message())
        spoken(ws)
        ws.send_text(json.dumps({"type": "prompt", **prompt}))
        closing, _ = spoken(ws)
        assert closing == CLOSING
    assert [(o.kind, o.text) for o in line.session.outcomes] == [("reply", prompt["voicePrompt"])]


def test_other_messages_while_listening_are_not_the_answer(line: Line_) -> None:
    """Twilio's `info` and `error` messages, or anything unknown, may come while the callee is
    listened to: the answer is still the next final prompt."""
    with line.connect() as ws:
        ws.send_text(setup_message())
        spoken(ws)
        for other in ({"type": "info", "timestamp": 1}, {"type": "error", "description": "tts slow"}, "not json"):
            ws.send_text(other if isinstance(other, str) else json.dumps(other))
        ws.send_text(json.dumps({"type": "prompt", "voicePrompt": "Yes, Friday works", "last": True}))
        closing, _ = spoken(ws)
        assert closing == CLOSING
    assert [(o.kind, o.text) for o in line.session.outcomes] == [("reply", "Yes, Friday works")]


def test_keys_up_to_the_hash_are_one_answer_without_it(line: Line_) -> None:
    with line.connect() as ws:
        ws.send_text(setup_message())
        spoken(ws)
        for key in "12#":
            ws.send_text(json.dumps({"type": "dtmf", "digit": key}))
        closing, _ = spoken(ws)
        assert closing == CLOSING
    assert ("callee", "12") in line.transcript()


def test_speech_while_nobody_listens_is_not_the_next_answer(open_line: Line_) -> None:
    """Between listening turns (the call held for the agent) a prompt is dropped: the answer to
    the agent's next question is what the callee says after it."""
    line = open_line
    with line.connect() as ws:
        ws.send_text(setup_message())
        spoken(ws)
        ws.send_text(json.dumps({"type": "prompt", "voicePrompt": "Yes, Friday works", "last": True}))
        line.client.portal.call(line.session.wait_until, lambda: bool(line.session.outcomes), 30)
        ws.send_text(json.dumps({"type": "prompt", "voicePrompt": "Hello? Still there?", "last": True}))
        line.client.portal.call(line.session.submit, Speak("Shall I book ten?", expect_reply=True))
        said, _ = spoken(ws)
        assert said == "Shall I book ten?"
        ws.send_text(json.dumps({"type": "prompt", "voicePrompt": "Yes please", "last": True}))
        line.client.portal.call(line.session.wait_until, lambda: len(line.session.outcomes) == 2, 30)
        line.client.portal.call(line.session.submit, HangUp("Bye now."))
        spoken(ws)
    assert [o.text for o in line.session.outcomes] == ["Yes, Friday works", "Yes please"]


def test_a_socket_twilio_leaves_open_after_end_is_closed_normally(runtime: Runtime) -> None:
    """After `end` Twilio closes the socket; should it not, the server does once `end_seconds`
    have passed, with a normal closure (the session ended as asked, not on an error)."""
    built = Line_(runtime, keep_open=False, limits=Limits(setup_seconds=1, silence_seconds=5, end_seconds=0.2))
    with built.client, built.connect() as ws:
        ws.send_text(setup_message())
        spoken(ws)
        ws.send_text(json.dumps({"type": "prompt", "voicePrompt": "Yes, Friday works", "last": True}))
        closing, _ = spoken(ws)
        assert closing == CLOSING and ws.receive_json()["type"] == "end"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()  # this side never closes
    assert closed.value.code == 1000


def test_a_message_of_the_largest_size_is_read(line: Line_) -> None:
    setup = json.loads(setup_message())
    padding = 16_384 - len(json.dumps({**setup, "pad": ""}))
    with line.connect() as ws:
        ws.send_text(json.dumps({**setup, "pad": "x" * padding}))  # 16 KB exactly: the limit, not over it
        said, _ = spoken(ws)
    assert said == f"{OPENING} {MESSAGE}"


def test_a_kept_open_call_says_the_agents_line_records_an_interruption_and_hangs_up(open_line: Line_) -> None:
    line = open_line
    with line.connect() as ws:
        ws.send_text(setup_message())
        spoken(ws)
        ws.send_text(json.dumps({"type": "dtmf", "digit": "1"}))
        line.client.portal.call(line.session.submit, Speak("Great. I'll book it now.", expect_reply=False))
        said, messages = spoken(ws)
        assert said == "Great. I'll book it now." and [m["last"] for m in messages] == [False, True]
        ws.send_text(json.dumps({"type": "interrupt", "utteranceUntilInterrupt": "Great.",
                                 "durationUntilInterruptMs": 800}))
        line.client.portal.call(line.session.submit, HangUp("Bye now."))
        goodbye, _ = spoken(ws)
        assert goodbye == "Bye now."
        end = ws.receive_json()
        assert end["type"] == "end" and json.loads(end["handoffData"]) == {"reason": "hangup"}
    assert line.transcript() == [("assistant", OPENING), ("assistant", MESSAGE), ("callee", "1"),
                                 ("assistant", "Great. I'll book it now."), ("assistant", "Bye now.")]
    assert line.events("interrupted") == [{"heard": "Great."}]


# -- hostile sockets ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["forged", "missing", "wrong token", "unknown call"])
def test_a_socket_without_a_valid_handshake_is_refused_and_changes_nothing(line: Line_, how: str) -> None:
    path = {"wrong token": "/relay/call_relay1/other", "unknown call": "/relay/call_nope/t0ken"}.get(how)
    signature = {"forged": "bm90IGEgc2lnbmF0dXJl", "missing": ""}.get(how)
    with pytest.raises(WebSocketDisconnect) as refused, line.connect(path, signature):
        pass
    assert refused.value.code == 1008
    assert line.transcript() == []


def test_a_second_socket_for_the_same_call_is_refused(line: Line_) -> None:
    with line.connect() as ws:
        ws.send_text(setup_message())
        spoken(ws)
        with pytest.raises(WebSocketDisconnect), line.connect():
            pass


def test_a_socket_that_never_says_setup_is_closed(line: Line_) -> None:
    with line.connect() as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 1008
    assert line.transcript() == []


def test_a_setup_for_another_call_is_closed(line: Line_) -> None:
    with line.connect() as ws:
        ws.send_text(json.dumps({"type": "setup", "callSid": "CA" + "9" * 32}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008


def test_an_oversize_message_closes_the_socket(line: Line_) -> None:
    with line.connect() as ws:
        ws.send_text(json.dumps({"type": "setup", "callSid": SID, "pad": "x" * 20_000}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1009
    assert line.transcript() == []


def test_a_flood_of_messages_closes_the_socket(runtime: Runtime) -> None:
    flooded = Line_(runtime, keep_open=False, limits=Limits(setup_seconds=1, burst=3, messages_per_second=0.001))
    with flooded.client, flooded.connect() as ws:
        ws.send_text(setup_message())
        spoken(ws)
        for _ in range(5):
            ws.send_text(json.dumps({"type": "prompt", "voicePrompt": "uh", "last": False}))
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
    assert closed.value.code == 1008


def test_the_message_rate_is_a_burst_then_the_rate_a_second() -> None:
    """The flood limit's arithmetic on an injected clock: `burst` messages at once, then one per
    1/rate seconds, and a long quiet gives back the burst only."""
    from twilio_caller.transport.twilio.relay_socket import _Bucket

    now = [0.0]
    bucket = _Bucket(4.0, 2, lambda: now[0])
    assert [bucket.take(), bucket.take(), bucket.take()] == [True, True, False]
    now[0] = 0.25  # a quarter of a second at 4 a second: one more
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] = 100.0
    assert [bucket.take(), bucket.take(), bucket.take()] == [True, True, False]


# -- the simulator's reading of it ------------------------------------------------------------


def test_the_simulator_reads_connect_conversation_relay_and_refuses_other_nouns() -> None:
    from twilio_caller.simulator.errors import CallFailure
    from twilio_caller.simulator.twiml import ConversationRelay, parse

    document = parse(relay.connect(SPEECH, "wss://calls.example.com/relay/c/t", PUBLIC + "/twilio/c/t/handoff"))
    verb = document.verbs[0]
    assert isinstance(verb, ConversationRelay) and not document.warnings
    assert (verb.url, verb.action, verb.method) == ("wss://calls.example.com/relay/c/t",
                                                   PUBLIC + "/twilio/c/t/handoff", "POST")
    for bad in ('<Response><Connect><Stream url="wss://x.example.com/s"/></Connect></Response>',
                '<Response><Connect><ConversationRelay url="https://x.example.com/s"/></Connect></Response>'):
        with pytest.raises(CallFailure):
            parse(bad)


def test_a_callee_script_can_interrupt_after_some_words_and_a_bad_count_is_refused() -> None:
    from twilio_caller.simulator.callee import CalleeScript, Speech
    from twilio_caller.simulator.errors import CalleeScriptError

    script = CalleeScript.from_dict({"replies": [{"say": "Wait", "interrupt_after": 2}]})
    assert script.replies == (Speech("Wait", 0.9, 2),)
    for bad in (-1, "two", True):
        with pytest.raises(CalleeScriptError, match="interrupt_after"):
            CalleeScript.from_dict({"replies": [{"say": "Wait", "interrupt_after": bad}]})
