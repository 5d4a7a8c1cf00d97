"""Issue 17: how a call sounds on each engine — ElevenLabs voices streamed by ConversationRelay
(no pre-generation, no audio route), Polly/Google voices as ttsProvider/voice, the relay
attributes from `conversation.relay`, a line's language on both engines, and the engine chosen
per call (`engine`), kept in `calls.engine` and restored when a call is taken back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from conftest import LiveServer
from elevenlabs_standin import API_KEY, VOICE_ID, StandIn
from twilio_caller import call_request, voices
from twilio_caller.errors import InvalidInputError
from twilio_caller.settings import ElevenLabsSettings, Relay, RelayLanguage
from twilio_caller.transport.port import Ask, Line, Say, Speech
from twilio_caller.transport.twilio import relay, twiml

OPENING = "Hi, this is Yamani, Robert's AI assistant."
STREAMED = f"ElevenLabs.{VOICE_ID}"


# -- ElevenLabs voice names -------------------------------------------------------------------------

def test_an_elevenlabs_voice_becomes_twilios_voice_string() -> None:
    bare = voices.elevenlabs_voice(f"elevenlabs.{VOICE_ID}")
    assert bare is not None and bare.name == STREAMED and bare.twilio_voice == VOICE_ID
    full = voices.elevenlabs_voice(f"{STREAMED}-flash_v2_5-1.2_1_0.8")
    assert full is not None and full.twilio_voice == f"{VOICE_ID}-flash_v2_5-1.2_1.0_0.8"
    completed = bare.completed("eleven_turbo_v2_5", {"stability": 0.3, "similarity_boost": 0.9})
    assert completed.twilio_voice == f"{VOICE_ID}-turbo_v2_5-1.0_0.3_0.9"  # speed: ElevenLabs' default
    assert bare.completed(None, {"speed": 1.1}).twilio_voice == f"{VOICE_ID}-flash_v2_5-1.1_0.5_0.75"
    assert bare.completed(None, None).twilio_voice == VOICE_ID  # the voice's own model and settings
    assert voices.check_voice(f"ELEVENLABS.{VOICE_ID}-flash_v2_5") == f"{STREAMED}-flash_v2_5"
    assert voices.elevenlabs_voice("Polly.Joanna") is None


@pytest.mark.parametrize(("name", "says"), [
    ("ElevenLabs.short", "not an ElevenLabs voice"),
    (f"{STREAMED}-multilingual_v2", "not one ConversationRelay streams"),
    (f"{STREAMED}-flash_v2_5-2.0_0.5_0.5", "speed 2.0 must be between 0.7 and 1.2"),
    (f"{STREAMED}-flash_v2_5-1.0_1.5_0.5", "stability 1.5 must be between 0 and 1"),
    (f"{STREAMED}-flash_v2_5-1.0_0.5_7", "similarity 7.0 must be between 0 and 1"),
    (f"{STREAMED}-flash_v2_5-1.0_._0.5", "must be three numbers"),
])
def test_a_malformed_elevenlabs_voice_is_refused_with_what_to_write(name: str, says: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        voices.check_voice(name)
    assert says in refused.value.message and refused.value.field == "voice"


# -- which voice a call gets ------------------------------------------------------------------------

def request(runtime, **arguments):
    return call_request.from_arguments(runtime.contacts, runtime.settings, {"to": "Contact1", "message": "Hi",
                                                                            **arguments})


@pytest.fixture
def runtime_with(home: Path):
    from twilio_caller.runtime import Runtime

    def make(config: str):
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.yaml").write_text(config)
        runtime = Runtime(home, environ={})
        if runtime.contacts.find_by_number("+13125550101") is None:
            runtime.contacts.add("Contact1", "+13125550101", "America/Chicago")
        return runtime

    return make


def test_the_call_voice_wins_then_the_contacts_then_the_configs(runtime_with) -> None:
    runtime = runtime_with(f"elevenlabs: {{voice_id: {VOICE_ID}, model: eleven_flash_v2_5}}\n")
    assert request(runtime, engine="relay").voice == f"{STREAMED}-flash_v2_5"  # config: the ElevenLabs voice
    assert request(runtime).voice == "Polly.Brian"  # gather: voice.default (ElevenLabs is pre-generated there)
    runtime.contacts.update("Contact1", voice="Polly.Joanna")
    assert request(runtime, engine="relay").voice == "Polly.Joanna"  # the contact's
    other = "ElevenLabs.AbCdEfGhIjKlMnOpQrSt"
    assert request(runtime, engine="relay", voice=other).voice == f"{other}-flash_v2_5"  # the call's
    assert request(runtime, engine="relay").engine == "relay" and request(runtime).engine == "gather"
    runtime.contacts.update("Contact1", voice=STREAMED)
    assert request(runtime, engine="relay").voice == f"{STREAMED}-flash_v2_5"
    assert request(runtime).voice == "Polly.Brian"  # gather cannot stream it: the config's voice


def test_an_elevenlabs_voice_on_the_gather_engine_is_refused(runtime_with) -> None:
    runtime = runtime_with("conversation: {engine: gather}\n")
    with pytest.raises(InvalidInputError) as refused:
        request(runtime, voice=STREAMED)
    assert "relay engine only" in refused.value.message and refused.value.field == "voice"
    with pytest.raises(InvalidInputError, match="not an engine"):
        call_request.parse_call(runtime.contacts, to="Contact1", message="Hi", region="US",
                                default_voice="Polly.Brian", default_language="en-US", engine="carrier-pigeon")
    assert call_request.engine_voice("Polly.Brian", "gather", ElevenLabsSettings()) == "Polly.Brian"


# -- the relay attributes ------------------------------------------------------------------------

def speech(voice: str = "Polly.Joanna", options: Relay | None = None, language: str = "en-US") -> Speech:
    return Speech(voice, None, language, "auto", 5, "phone_call", ("Robert",), options or Relay())


def noun(document: str) -> ET.Element:
    found = ET.fromstring(document).find("./Connect/ConversationRelay")
    assert found is not None
    return found


def test_the_noun_carries_the_voice_and_the_configured_attributes() -> None:
    options = Relay(transcription_provider="Deepgram", speech_model="nova-3-general", tts_language="en-GB",
                    transcription_language="en-US", hints=("Yamani", "Friday"),
                    elevenlabs_text_normalization="on",
                    languages=(RelayLanguage("es-ES", "Polly.Lupe", "Google", "telephony"),
                               RelayLanguage("de-DE", f"{STREAMED}-flash_v2_5")))
    element = noun(relay.connect(speech(f"{STREAMED}-turbo_v2_5-1.0_0.5_0.75", options), "wss://h.example.com/r", "https://h.example.com/a"))
    assert element.attrib["ttsProvider"] == "ElevenLabs"
    assert element.attrib["voice"] == f"{VOICE_ID}-turbo_v2_5-1.0_0.5_0.75"
    assert (element.attrib["language"], element.attrib["ttsLanguage"], element.attrib["transcriptionLanguage"]) == (
        "en-US", "en-GB", "en-US")
    assert element.attrib["transcriptionProvider"] == "Deepgram" and element.attrib["speechModel"] == "nova-3-general"
    assert element.attrib["hints"] == "Yamani,Friday" and element.attrib["elevenlabsTextNormalization"] == "on"
    languages = [child.attrib for child in element]
    assert languages == [
        {"code": "es-ES", "ttsProvider": "Amazon", "voice": "Lupe", "transcriptionProvider": "Google",
         "speechModel": "telephony"},
        {"code": "de-DE", "ttsProvider": "ElevenLabs", "voice": f"{VOICE_ID}-flash_v2_5"},
    ]


def test_without_relay_settings_twilio_keeps_its_defaults() -> None:
    element = noun(relay.connect(speech("Google.en-US-Neural2-F"), "wss://h.example.com/r", "https://h.example.com/a"))
    assert (element.attrib["ttsProvider"], element.attrib["voice"]) == ("Google", "en-US-Neural2-F")
    assert element.attrib["hints"] == "Robert"  # the Gather hints
    for unset in ("ttsLanguage", "transcriptionLanguage", "transcriptionProvider", "speechModel",
                  "elevenlabsTextNormalization", "welcomeGreeting"):
        assert unset not in element.attrib
    assert list(element) == []


# -- a line's language, as each engine renders it -------------------------------------------------

def test_a_line_in_another_language_carries_it_on_relay_tokens_and_switches_once() -> None:
    plan = relay.read_plan(relay.render(Ask((Line("¿Le va bien el viernes? Es el diez.", None, "es-ES"),), 2)))
    assert [m.get("lang") for m in plan.messages] == ["es-ES", "es-ES"]
    switch, now = relay.language_switch(plan.messages, None, speech())
    assert switch == {"type": "language", "ttsLanguage": "es-ES", "transcriptionLanguage": "es-ES"} and now == "es-ES"
    assert relay.language_switch(plan.messages, "es-ES", speech()) == (None, "es-ES")  # already there
    back = relay.read_plan(relay.render(Say(("Thanks!",), 3)))
    options = Relay(tts_language="en-GB", transcription_language="en-US")
    assert relay.language_switch(back.messages, "es-ES", speech(options=options)) == (
        {"type": "language", "ttsLanguage": "en-GB", "transcriptionLanguage": "en-US"}, None)
    assert relay.language_switch((), "es-ES", speech()) == (None, "es-ES")  # a hold changes nothing


def test_a_line_in_another_language_sets_say_and_gather_language_on_gather() -> None:
    document = ET.fromstring(twiml.render(Ask(("Hello", Line("¿Y usted?", None, "es-ES")), 4),
                                          speech("alice"), lambda route, n: f"https://h.example.com/{route}?n={n}"))
    gather = document.find("Gather")
    assert gather is not None and gather.attrib["language"] == "es-ES"
    assert [(say.text, say.attrib.get("language")) for say in gather.findall("Say")] == [
        ("Hello", None), ("¿Y usted?", "es-ES")]
    plain = ET.fromstring(twiml.render(Ask(("Hello",), 5), speech("alice"), lambda route, n: "https://h.example.com/g"))
    assert plain.find("Gather").attrib["language"] == "en-US"  # type: ignore[union-attr]


# -- whole calls through the simulator ------------------------------------------------------------

def start(home: Path, *, engine: str = "gather", relay_config: str = "", extra: str = "") -> LiveServer:
    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=30, extra_config=extra)
    config = home / "config.yaml"
    config.write_text(config.read_text().replace(
        "conversation:\n", f"conversation:\n  engine: {engine}\n{relay_config}"))
    server.thread.start()
    return server


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.thread.stop()
        server.runtime.close()


def test_an_elevenlabs_voice_is_streamed_by_twilio_with_nothing_generated_or_served(
        home: Path, eleven: StandIn, servers: list[LiveServer]) -> None:
    extra = (f"elevenlabs: {{api_base_url: '{eleven.base_url}', voice_id: {VOICE_ID}, api_key: {API_KEY},"
             " model: eleven_flash_v2_5, voice_settings: {stability: 0.4, similarity_boost: 0.8, speed: 1.1}}\n")
    server = start(home, engine="relay", extra=extra)
    servers.append(server)
    server.script("Contact1", replies=[{"say": "Got it"}])
    result = server.tool("call", to="Contact1", message="Your table is ready", interactive=True)
    assert result["reply"]["text"] == "Got it"
    final = server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    record = server.simulator.call(result["twilio_sid"])
    assert record.wait(10)
    spoken = [(u.text, u.voice) for u in record.heard]
    voice = f"ElevenLabs.{VOICE_ID}-flash_v2_5-1.1_0.4_0.8"
    assert spoken == [(f"{OPENING} Your table is ready", voice), ("Thanks, I'll pass that on. Goodbye.", voice)]
    assert eleven.requests == []  # no pre-generation, before dialing or during the call
    assert "play" not in [u.kind for u in record.heard]
    assert [r.purpose for r in record.requests if "audio" in r.url] == []  # no local audio served
    assert final["audio_fallbacks"] == [] and API_KEY not in str(final)
    assert server.runtime.store.calls.get(result["call_id"])["voice"] == voice


def test_a_relay_call_switches_language_for_a_line_and_back(home: Path, servers: list[LiveServer]) -> None:
    languages = "  relay:\n    languages: [{code: es-ES, voice: Polly.Lupe}]\n"
    server = start(home, engine="relay", relay_config=languages)
    servers.append(server)
    server.script("Contact2", replies=[{"say": "Hello"}, {"say": "Sí, el viernes"}, {"say": "Thanks"}])
    placed = server.tool("call", to="Contact2", message="Quick question", keep_open=True, voice="Polly.Joanna",
                         language="en-US")
    spanish = server.tool("say", call_id=placed["call_id"], message="¿Le va bien el viernes?", language="es-ES")
    assert spanish["reply"]["text"] == "Sí, el viernes"
    english = server.tool("say", call_id=placed["call_id"], message="Great, see you then.")
    assert english["reply"]["text"] == "Thanks"
    server.tool("hangup", call_id=placed["call_id"])
    heard = [(u.text, u.voice, u.language) for u in server.simulator.call(placed["twilio_sid"]).heard]
    assert heard[:3] == [(f"{OPENING} Quick question", "Amazon.Joanna", "en-US"),
                         ("¿Le va bien el viernes?", "Amazon.Lupe", "es-ES"),
                         ("Great, see you then.", "Amazon.Joanna", "en-US")]


def test_a_gather_call_says_a_line_in_its_language_and_listens_in_it(home: Path, servers: list[LiveServer]) -> None:
    server = start(home)
    servers.append(server)
    server.script("Contact3", replies=[{"say": "Hello"}, {"say": "Oui"}])
    placed = server.tool("call", to="Contact3", message="Quick question", keep_open=True, voice="alice")
    french = server.tool("say", call_id=placed["call_id"], message="Vous êtes libre vendredi ?", language="fr-FR")
    assert french["reply"]["text"] == "Oui"
    server.tool("hangup", call_id=placed["call_id"])
    heard = [(u.text, u.voice, u.language) for u in server.simulator.call(placed["twilio_sid"]).heard]
    assert ("Vous êtes libre vendredi ?", "alice", "fr-FR") in heard
    assert heard[0] == (OPENING, "alice", "en-GB")
    answers = server.runtime.store.query(
        "SELECT twiml FROM call_answers WHERE call_id = ? AND twiml LIKE ?", (placed["call_id"], "%vendredi%"))
    gather = ET.fromstring(answers[0]["twiml"]).find("Gather")
    assert gather is not None and gather.attrib["language"] == "fr-FR"


def test_the_engine_is_chosen_per_call_and_kept_with_it(home: Path, servers: list[LiveServer]) -> None:
    server = start(home, engine="gather")
    servers.append(server)
    server.script("Contact4", replies=[{"say": "Sure"}])
    streamed = server.tool("call", to="Contact4", message="Dinner?", interactive=True, engine="relay")
    assert streamed["reply"]["text"] == "Sure"
    server.tool("wait", call_id=streamed["call_id"], until="end", timeout_seconds=20)
    def actions(result: dict) -> list[str]:
        record = server.simulator.call(result["twilio_sid"])
        assert record.wait(10)
        return [r.url.split("?")[0].rsplit("/", 1)[-1] for r in record.requests if r.purpose == "action"]

    assert actions(streamed) == ["handoff"]  # the <Connect action> after the relay session
    server.script("Contact5", replies=[{"say": "Sure"}])
    gathered = server.tool("call", to="Contact5", message="Dinner?", interactive=True)
    assert actions(gathered) == ["gather"]
    engines = {row["id"]: row["engine"] for row in server.runtime.store.query("SELECT id, engine FROM calls")}
    assert engines == {streamed["call_id"]: "relay", gathered["call_id"]: "gather"}
    dry = server.tool("call", to="Contact5", message="Dinner?", engine="relay", dry_run=True)
    assert dry["engine"] == "relay"


@pytest.mark.parametrize(("arguments", "says"), [
    ({"engine": "carrier-pigeon"}, "engine"),
    ({"voice": STREAMED}, "relay engine only"),
])
def test_an_unknown_engine_or_a_voice_it_cannot_speak_dials_nothing(
        home: Path, servers: list[LiveServer], arguments: dict, says: str) -> None:
    server = start(home)
    servers.append(server)
    with pytest.raises(InvalidInputError) as refused:
        server.tool("call", to="Contact6", message="Hello", **arguments)
    assert says in refused.value.message
    assert server.simulator.calls == []  # nothing reached the Calls API
    assert server.runtime.store.query("SELECT id FROM calls") == []


def test_the_cli_takes_the_engine_and_a_lines_language(home: Path, capsys) -> None:
    import json

    from twilio_caller.cli import build_parser, main

    parser = build_parser()
    assert parser.parse_args(["call", "Contact1", "Hi", "--engine", "relay"]).engine == "relay"
    assert parser.parse_args(["say", "call_1", "Hola", "--language", "es-ES"]).language == "es-ES"
    home.mkdir(parents=True, exist_ok=True)
    assert main(["call", "Contact1", "Hi", "--engine", "smoke-signals", "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "invalid_input" and "choose from 'gather', 'relay'" in error["message"]
    assert not (home / "run").exists()  # no server was started, nothing dialled


# -- the engine after a restart, and when a relay call goes on with TwiML ---------------------------

def test_a_relay_call_taken_back_before_it_is_answered_goes_on_relay(home: Path) -> None:
    from crashkit import live_home, server
    from twilio_caller.manifest import invoke
    from twilio_caller.simulator import InteractiveCallee, Simulator, SimulatorThread

    simulator = Simulator(time_scale=1.0)
    with SimulatorThread(simulator) as running:
        runtime = live_home(home, simulator, running.base_url)
        simulator.set_callee("+13125550101", InteractiveCallee(lambda heard: "Yes" if "Dinner" in heard else "",
                                                              ring_seconds=6))
        first = server(home)
        placed = invoke("call", {"to": "Contact1", "message": "Dinner?", "interactive": True, "wait": False,
                                 "engine": "relay"}, runtime)
        first.stop()  # while it rings: the next server takes it back from the store
        second = server(home)
        try:
            result = invoke("wait", {"call_id": placed["call_id"], "timeout_seconds": 30}, runtime)
            assert result["reply"]["text"] == "Yes"
            record = simulator.call(result["twilio_sid"])
            assert record.wait(15)
            handoffs = [r for r in record.requests if r.purpose == "action" and r.url.endswith("/handoff")]
            assert handoffs and handoffs[0].params["SessionStatus"] == "ended"  # relay, on the second server
        finally:
            second.stop()
            runtime.close()


def test_a_machine_on_an_elevenlabs_relay_call_gets_its_message_in_a_say_voice(
        home: Path, servers: list[LiveServer]) -> None:
    server = start(home, engine="relay")
    servers.append(server)
    server.script("Contact7", answer="machine", greeting_seconds=2)
    result = server.tool("call", to="Contact7", message="Call Robert back", voice=STREAMED)
    assert result["answered_by"] == "machine" and result["voicemail_left"] is True
    record = server.simulator.call(result["twilio_sid"])
    assert any("Call Robert back" in u.text for u in record.voicemail)
    assert {u.voice for u in record.voicemail if u.kind == "say"} == {"Polly.Brian"}  # voice.default
    assert not [e for e in record.errors if e.fatal]


# -- the opening as welcomeGreeting -------------------------------------------------------------------

def test_without_greeting_drops_only_the_greetings_leading_tokens() -> None:
    plan = relay.read_plan(relay.render(Ask((OPENING, "Dinner at eight? Or nine."), 1)))
    rest = relay.without_greeting(plan.messages, OPENING)
    assert [m["token"] for m in rest] == ["Dinner at eight? ", "Or nine."] and rest[-1]["last"] is True
    assert relay.without_greeting(plan.messages, "Hello there.") == plan.messages  # not how it starts
    alone = relay.read_plan(relay.render(Say((OPENING,), 2)))
    assert relay.without_greeting(alone.messages, OPENING) == alone.messages  # nothing would be left to say


def test_the_opening_as_welcome_greeting_is_spoken_once_and_kept_in_the_transcript(
        home: Path, servers: list[LiveServer]) -> None:
    server = start(home, engine="relay", relay_config="  relay: {welcome_greeting: true}\n")
    servers.append(server)
    server.script("Contact8", replies=[{"say": "Sure"}])
    result = server.tool("call", to="Contact8", message="Dinner at eight?", interactive=True, voice="Polly.Joanna")
    assert result["reply"]["text"] == "Sure"
    final = server.tool("wait", call_id=result["call_id"], until="end", timeout_seconds=20)
    record = server.simulator.call(result["twilio_sid"])
    assert record.wait(10)
    assert [u.text for u in record.heard] == [OPENING, "Dinner at eight?", "Thanks, I'll pass that on. Goodbye."]
    assert record.heard[0].voice == "Amazon.Joanna"
    assert [t["text"] for t in final["transcript"] if t["speaker"] == "assistant"] == [
        OPENING, "Dinner at eight?", "Thanks, I'll pass that on. Goodbye."]
    stored = server.runtime.store.query("SELECT twiml FROM call_answers WHERE call_id = ? AND request_key = 'voice'",
                                        (result["call_id"],))
    assert OPENING in stored[0]["twiml"]  # the answer on record is whole: a replay says what was meant


def test_a_polly_voice_keeps_its_own_language_on_gather_while_recognition_switches() -> None:
    document = ET.fromstring(twiml.render(Ask((Line("¿Y usted?", None, "es-ES"),), 4), speech("Polly.Brian"),
                                          lambda route, n: "https://h.example.com/g"))
    gather = document.find("Gather")
    assert gather is not None and gather.attrib["language"] == "es-ES"
    say = gather.find("Say")
    assert say is not None and "language" not in say.attrib  # Twilio refuses a voice/language mismatch


def test_the_simulator_picks_the_voice_and_languages_twilio_would() -> None:
    from twilio_caller.simulator.relay import Voices
    from twilio_caller.simulator.twiml import ConversationRelay

    verb = ConversationRelay("wss://h.example.com/r", None, "POST", (
        ("language", "en-US"), ("transcriptionLanguage", "en-GB"), ("ttsProvider", "Amazon"), ("voice", "Joanna")),
        ((("code", "es-ES"), ("ttsProvider", "Google"), ("voice", "es-ES-Neural2-A")),))
    chosen = Voices.of(verb)
    assert chosen.heard_in == "en-GB" and chosen.greeting is None
    assert chosen.speaking(None) == ("Amazon.Joanna", "en-US")
    assert chosen.speaking("es-ES") == ("Google.es-ES-Neural2-A", "es-ES")
    assert chosen.speaking("fr-FR") == ("Amazon.Joanna", "fr-FR")  # no <Language> for it: the noun's voice


def test_a_misspelt_voice_in_the_relay_languages_is_a_config_error_naming_it(runtime_with) -> None:
    from twilio_caller.errors import ConfigError

    runtime = runtime_with("conversation:\n  relay:\n    languages: [{code: es-ES, voice: Polly.Lupee}]\n")
    with pytest.raises(ConfigError) as refused:
        request(runtime, engine="relay")
    assert "conversation.relay.languages[0] (es-ES).voice" in refused.value.message
    assert "did you mean Polly.Lupe" in refused.value.message
    assert request(runtime).engine == "gather"  # gather calls never use them


def test_a_lines_language_is_kept_with_the_queued_action_and_older_rows_read_the_same() -> None:
    from twilio_caller.sessions import Speak, action_from_dict, action_to_dict

    line = Speak("¿Le va bien?", True, "es-ES")
    stored = action_to_dict(line)
    assert stored == {"kind": "speak", "text": "¿Le va bien?", "expect_reply": True, "id": line.id, "language": "es-ES"}
    assert action_from_dict(stored) == line and action_from_dict(stored).id == line.id
    plain = Speak("Hi", False)
    assert action_to_dict(plain) == {"kind": "speak", "text": "Hi", "expect_reply": False, "id": plain.id}
    assert action_from_dict({"kind": "speak", "text": "Hi", "expect_reply": False}) == Speak("Hi", False)


@pytest.mark.parametrize("engine", ["gather", "relay"])
def test_a_reprompt_after_silence_asks_again_in_the_lines_language(
        home: Path, servers: list[LiveServer], engine: str) -> None:
    server = start(home, engine=engine)
    servers.append(server)
    server.script("Contact3", replies=[{"say": "Hello"}, {"silence": True}, {"say": "Oui"}])
    placed = server.tool("call", to="Contact3", message="Quick question", keep_open=True, voice="alice")
    french = server.tool("say", call_id=placed["call_id"], message="Vous êtes libre vendredi ?", language="fr-FR")
    assert french["reply"]["text"] == "Oui"  # heard on the reprompt
    server.tool("hangup", call_id=placed["call_id"])
    heard = [(u.text, u.language) for u in server.simulator.call(placed["twilio_sid"]).heard if u.kind == "say"]
    asked = [language for text, language in heard if "vendredi" in text]
    assert len(asked) == 2 and set(asked) == {"fr-FR"}  # the question, then the reprompt: both in French
    if engine == "gather":  # a line a <Say>: the reprompt's own words stay in the call's language
        assert ("Sorry, I didn't catch that.", "en-GB") in heard
