"""The call commands from the shell: progress on stderr, one JSON document with --json, the
classic argument forms, and a second process continuing a call the first one placed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twilio_caller.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_call_shows_live_progress_and_the_result(live_server, capsys) -> None:
    live_server.script("Contact1", replies=[{"say": "No worries", "confidence": 0.9}])
    code, out, err = run(capsys, "call", "Contact1", "I'll be late", "--interactive", "--simulate")
    assert code == 0
    lines = err.splitlines()
    assert lines[0] == "dialing Contact1 …"
    for expected in ("ringing", "answered", "  assistant: I'll be late", '  callee:    "No worries" (confidence 0.90)'):
        assert expected in lines
    assert lines.index("ringing") < lines.index("answered") < lines.index("  assistant: I'll be late")
    assert 'reply (untrusted): "No worries"' in out


def test_the_classic_form_with_json(live_server, capsys) -> None:
    code, out, err = run(capsys, "call", "--number=312-555-0002", "--message=Thanks for the craft beer!",
                         "--interactive=false", "--simulate", "--json")
    assert code == 0 and err == ""
    result = json.loads(out)
    assert result["status"] == "completed" and result["to"]["name"] == "Contact2"
    assert result["transcript"][1]["text"] == "Thanks for the craft beer!"


def test_dry_run_dials_nothing(live_server, capsys) -> None:
    code, out, _ = run(capsys, "call", "Contact3", "Hello", "--dry-run", "--json")
    assert code == 0
    assert json.loads(out)["allowed"] is True
    assert live_server.simulator.calls == []


def test_refusals_exit_3_with_the_rule(live_server, capsys) -> None:
    code, out, _ = run(capsys, "call", "911", "help", "--simulate", "--json")
    assert code == 3
    error = json.loads(out)["error"]
    assert (error["code"], error["rule"]) == ("refused", "never_dial")
    assert live_server.simulator.calls == []


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        (["call", "Contact1"], 2, "call needs someone to call and a message"),
        (["call", "Nobody", "hi", "--simulate"], 6, "no contact named 'Nobody'"),
        (["say", "call_unknown", "hi"], 6, "no call with call_id"),
        (["call", "Contact1", "hi", "--callee", "x.yaml"], 2, "--callee needs --simulate"),
        (["call", "Contact1", "hi", "--interactive=maybe"], 2, "expected true or false"),
    ],
)
def test_bad_call_commands(live_server, capsys, argv, code, text) -> None:
    status, out, err = run(capsys, *argv)
    assert status == code and text in err and "Traceback" not in err


def test_missing_credentials_name_the_variables(capsys, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text('safety: {calling_hours: "00:00-24:00", callee_hours: null}\nwebhook: {port: 0}\n')
    main(["add", "312-555-0101", "Contact1"])
    capsys.readouterr()
    code, out, err = run(capsys, "call", "Contact1", "hi")
    assert code == 5
    assert "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER" in err
    assert "--simulate" in err


def test_a_busy_webhook_port_is_explained(capsys, home: Path) -> None:
    from twilio_caller.serving import bind

    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(f"webhook: {{port: {port}}}\n")
    code, out, err = run(capsys, "serve", "--simulate")
    taken.close()
    assert code == 5
    assert f"port {port} on 127.0.0.1 is already in use" in err and "webhook.port" in err


@pytest.mark.parametrize("engine", ["gather", "relay"])
def test_a_second_process_continues_the_call(home: Path, tmp_path: Path, engine: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        'safety: {calling_hours: "00:00-24:00", callee_hours: null}\nwebhook: {port: 0}\n'
        f"conversation: {{engine: {engine}, hold_budget_seconds: 1, unsteered_limit_seconds: 30}}\n"
    )
    callee = tmp_path / "callee.yaml"
    callee.write_text("ring_seconds: 0.5\nreplies:\n  - say: Hello there\n  - say: Friday is fine\n")
    env = {**os.environ, "TWILIO_CALLER_HOME": str(home)}

    def cli(*argv: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "twilio_caller", *argv, "--json"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    cli("add", "312-555-0101", "Contact1")
    try:
        first = cli("call", "Contact1", "Quick question", "--keep-open", "--simulate",
                    "--callee", str(callee))
        assert first["reply"]["text"] == "Hello there"
        second = cli("say", first["call_id"], "Does Friday work?")
        assert second["reply"]["text"] == "Friday is fine"
        ended = cli("hangup", first["call_id"], "Thanks, bye!")
        assert ended["status"] == "completed"
        status = cli("status", first["call_id"])
        assert [t["text"] for t in status["transcript"]][-1] == "Thanks, bye!"
        callee = [t["text"] for t in status["transcript"] if t["speaker"] == "callee"]
        assert callee == ["Hello there", "Friday is fine"]  # each turn once, on either engine
        assert [t["text"] for t in status["transcript"]].count("Does Friday work?") == 1
        assert cli("server", "status")["running"] is True
    finally:
        stopped = cli("server", "stop")
    assert stopped["running"] is False
    assert not (home / "run" / "server.json").exists()
    log = (home / "logs" / "server.log").read_text()
    assert "serving: webhook" in log
    import sqlite3

    tokens = [row[0] for row in sqlite3.connect(home / "twilio-caller.db").execute("SELECT token FROM calls")]
    assert tokens and not any(token in log for token in tokens)  # per-call secrets never logged


def test_the_demo_runs_offline_and_leaves_the_real_home_alone(capsys, home: Path) -> None:
    from twilio_caller.demo import DEMO_REPLY

    code, out, err = run(capsys, "demo", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["reply"] == {"text": DEMO_REPLY, "confidence": 0.93, "untrusted": True}
    assert result["to"]["name"] == "Contact1"
    assert "dialing Contact1" in err and "completed" in err
    assert not home.exists()  # the demo used a throw-away home
