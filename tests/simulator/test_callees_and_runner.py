"""Callee scripts, the interactive callee, time, running in-loop, and the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from twilio.twiml.voice_response import VoiceResponse

from twilio_caller.simulator import (
    CalleeScript,
    CalleeScriptError,
    Digits,
    HangUp,
    InteractiveCallee,
    Server,
    Silence,
    SimulatorServer,
    Speech,
    callee_book_from_dict,
    load_callee_book,
)
from twilio_caller.simulator.cli import main
from twilio_caller.simulator.timeline import speech_seconds

from .conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, TO, Rig, make_simulator, sdk_client
from .twiml_app import TwimlApp


def test_a_yaml_callee_file_maps_numbers_to_scripts(tmp_path: Path) -> None:
    path = tmp_path / "callees.yaml"
    path.write_text(
        """
+13125550101:
  answer: human
  ring_seconds: 2
  replies:
    - {say: "I'll be there", confidence: 0.94}
    - {silence: true}
    - {digits: 1}
    - {hangup: true}
"+13125550102": {answer: machine, greeting_seconds: 5}
default: {answer: busy}
""",
        encoding="utf-8",
    )
    book = load_callee_book(path)
    assert book.profile_for("+13125550101") == CalleeScript(
        answer="human", ring_seconds=2, replies=(Speech("I'll be there", 0.94), Silence(), Digits("1"), HangUp())
    )
    assert book.profile_for("+13125550102") == CalleeScript(answer="machine", greeting_seconds=5)
    assert book.profile_for("+19999999999").answer == "busy"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"+13125550101": {"answer": "maybe"}}, "answer must be one of"),
        ({"+13125550101": {"ring_seconds": -1}}, "ring_seconds"),
        ({"+13125550101": {"replies": [{"say": ""}]}}, "replies[0]: say must be non-empty"),
        ({"+13125550101": {"replies": [{"say": "x", "confidence": 2}]}}, "confidence"),
        ({"+13125550101": {"replies": [{"shout": "x"}]}}, "replies[0]: expected one of"),
        ({"+13125550101": {"replies": [{"digits": "12x"}]}}, "digits must be keys"),
        ({"+13125550101": {"colour": "red"}}, "unknown key(s) colour"),
        ({"3125550101": {}}, "not an E.164 number"),
        (["not", "a", "mapping"], "expected a mapping"),
    ],
)
def test_bad_callee_scripts_name_the_problem(data: object, message: str) -> None:
    with pytest.raises(CalleeScriptError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        callee_book_from_dict(data)


def test_unreadable_or_invalid_yaml_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CalleeScriptError, match="cannot read callee file"):
        load_callee_book(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [unclosed", encoding="utf-8")
    with pytest.raises(CalleeScriptError, match="not valid YAML"):
        load_callee_book(broken)


def test_speech_takes_one_second_per_two_and_a_half_words() -> None:
    assert speech_seconds("one two three four five") == 2.0
    assert speech_seconds("") == 0.4


def test_replies_run_out_into_silence(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(replies=(Speech("first"),)))
    def build(r: VoiceResponse) -> None:
        r.gather(input="speech", action="/got").say("one?")
    rig.app.say("/voice", build)
    def again(r: VoiceResponse) -> None:
        r.gather(input="speech", action="/got").say("two?")
        r.say("silence then")
    rig.app.say("/got", again)
    record = rig.finish(rig.call())
    assert len(rig.app.requests_to("/got")) == 1
    assert record.heard_text == ["one?", "two?", "silence then"]


def test_an_interactive_callee_answers_from_a_blocking_callable_given_what_it_heard(rig: Rig) -> None:
    heard: list[str] = []
    answers = iter(["Sure, tomorrow works", ""])

    def person(text: str) -> str:  # like input() in a thread
        heard.append(text)
        return next(answers)

    rig.simulator.set_callee(TO, InteractiveCallee(person))
    def build(r: VoiceResponse) -> None:
        r.say("Hi, this is Yamani.")
        r.gather(input="speech", action="/got").say("Can you meet tomorrow?")
    rig.app.say("/voice", build)
    rig.app.say("/got", lambda r: r.gather(input="speech", action="/got").say("Anything else?"))
    record = rig.finish(rig.call())
    assert heard == ["Hi, this is Yamani. Can you meet tomorrow?", "Anything else?"]
    assert rig.app.requests_to("/got")[0].params["SpeechResult"] == "Sure, tomorrow works"
    assert record.said_text == ["Sure, tomorrow works"]


def test_an_interactive_callee_can_be_async_and_hang_up(rig: Rig) -> None:
    async def person(text: str) -> HangUp:
        await asyncio.sleep(0)
        return HangUp()

    rig.simulator.set_callee(TO, InteractiveCallee(person))
    rig.app.say("/voice", lambda r: r.gather(input="speech").say("Hello?"))
    record = rig.finish(rig.call())
    assert record.end_reason == "callee-hangup"


def test_a_person_typing_holds_the_call_in_real_time_until_they_answer(rig: Rig) -> None:
    asked, typed = threading.Event(), threading.Event()

    def person(text: str) -> str:
        asked.set()
        typed.wait(10)
        return "typed reply"

    rig.simulator.set_callee(TO, InteractiveCallee(person))
    rig.app.say("/voice", lambda r: r.gather(input="speech", action="/got").say("Well?"))
    rig.app.say("/got", lambda r: r.hangup())
    sid = rig.call()
    assert asked.wait(10)
    assert rig.client.calls(sid).fetch().status == "in-progress"
    typed.set()
    rig.finish(sid)
    assert rig.app.requests_to("/got")[0].params["SpeechResult"] == "typed reply"


async def test_the_simulator_runs_inside_a_running_event_loop() -> None:
    simulator = make_simulator()
    app = TwimlApp(AUTH_TOKEN)
    app.say("/voice", lambda r: r.say("in the loop"))
    async with Server(app.app) as app_server, SimulatorServer(simulator) as server:
        app.base_url = app_server.base_url
        client = sdk_client(server.base_url)
        call = await asyncio.to_thread(client.calls.create, to=TO, from_=FROM, url=app.url("/voice"))
        record = await simulator.wait_for_call_async(call.sid, timeout=10)
        assert record.heard_text == ["in the loop"]
        assert all(item.signature_valid for item in app.received)


async def test_stopping_the_server_ends_live_calls() -> None:
    simulator = make_simulator(time_scale=1.0)
    async with SimulatorServer(simulator) as server:
        async with httpx.AsyncClient(auth=(ACCOUNT_SID, AUTH_TOKEN)) as http:
            response = await http.post(
                f"{server.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
                data={"To": TO, "From": FROM, "Twiml": "<Response><Pause length='600'/></Response>"},
            )
        sid = response.json()["sid"]
    record = await simulator.wait_for_call_async(sid, timeout=5)
    assert record.status == "failed" and record.end_reason == "simulator-stopped"


def test_cli_reports_a_busy_port_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in error and "Traceback" not in error


def test_cli_names_a_bad_callee_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "callees.yaml"
    path.write_text("'+13125550101': {answer: sometimes}\n", encoding="utf-8")
    assert main(["--port", "0", "--callees", str(path)]) == 2
    assert "answer must be one of" in capsys.readouterr().err


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--time-scale", "0"]) == 2
    assert main(["--account-sid", "nope"]) == 2
    assert main(["--port", "many"]) == 2
    assert "Traceback" not in capsys.readouterr().err


EXIT_SECONDS = 60


def _ignore_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_cli_serves_prints_credentials_and_stops_on_ctrl_c(tmp_path: Path, inherited: str) -> None:
    """Ctrl-C stops it also when it starts with SIGINT ignored, as a script's background job
    (`simulator &`) and every process it starts do: Python then leaves SIGINT ignored."""
    code = "import sys; from twilio_caller.simulator.cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        preexec_fn=_ignore_ctrl_c if inherited == "ignored" else None,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Twilio simulator listening on http://127.0.0.1:")
        base_url = first.rsplit(" ", 1)[1].strip()
        lines = [process.stdout.readline() for _ in range(3)]
        assert ACCOUNT_SID in lines[0] and AUTH_TOKEN in lines[1]
        assert sdk_client(base_url).calls.list() == []
    finally:
        process.send_signal(signal.SIGINT)
        try:  # the wait for the exit only: a busy machine takes seconds to stop and tear down
            _, err = process.communicate(timeout=EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 0 and "Traceback" not in err and "simulator stopped" in err
