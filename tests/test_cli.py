from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twilio_caller.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code, out, _ = run(capsys, *argv, "--json")
    return code, json.loads(out)  # exactly one JSON document, or this fails


def test_classic_add_then_list(capsys) -> None:
    code, out, _ = run(capsys, "add", "312-555-0123", "Contact7")
    assert (code, out) == (0, "added Contact7 (+13125550123)\n")
    code, out, _ = run(capsys, "add", "Contact8", "(312) 555-0124", "--timezone", "America/New_York")
    assert code == 0
    code, out, _ = run(capsys, "contacts")
    assert out.splitlines() == [
        "NAME      NUMBER        TIMEZONE          VOICE  NOTES",
        "Contact7  +13125550123",
        "Contact8  +13125550124  America/New_York",
    ]


def test_add_with_named_options(capsys) -> None:
    code, contact = run_json(capsys, "add", "--name", "Contact 9", "--number", "312 555 0109",
                             "--voice", "Polly.Joanna", "--notes", "neighbour")
    assert code == 0
    assert contact["name"] == "Contact 9" and contact["voice"] == "Polly.Joanna"


@pytest.mark.parametrize(
    ("argv", "exit_code", "code", "text"),
    [
        (["add", "555-123-4567", "Contact7"], 2, "invalid_input", "not a valid phone number"),
        (["add", "Contact7"], 2, "invalid_input", "add needs a number and a name"),
        (["remove", "Nobody"], 6, "not_found", "no contact named 'Nobody'"),
        (["bogus"], 2, "invalid_input", "invalid choice: 'bogus'"),
        (["calls", "--since", "last tuesday"], 2, "invalid_input", "is not a date or time"),
        (["update", "Contact7"], 2, "invalid_input", "nothing to change"),
    ],
)
def test_errors_have_exit_codes_and_one_json_document(capsys, argv, exit_code, code, text) -> None:
    status, document = run_json(capsys, *argv)
    assert status == exit_code
    assert document["error"]["code"] == code
    assert text in document["error"]["message"]
    status, out, err = run(capsys, *argv)
    assert status == exit_code and out == ""
    assert err.startswith("twilio-caller: ") and text in err and "Traceback" not in err


def test_update_rename_remove(capsys) -> None:
    run(capsys, "add", "312-555-0123", "Contact7")
    code, contact = run_json(capsys, "update", "contact7", "--timezone", "America/Denver")
    assert (code, contact["timezone"]) == (0, "America/Denver")
    code, contact = run_json(capsys, "update", "Contact7", "--timezone", "")
    assert contact["timezone"] is None
    code, out, _ = run(capsys, "rename", "Contact7", "Seven")
    assert out == "renamed Contact7 to Seven\n"
    code, out, _ = run(capsys, "remove", "seven")
    assert out == "removed Seven (+13125550123)\n"
    assert run_json(capsys, "contacts")[1] == {"contacts": []}


def test_contacts_import(capsys, tmp_path: Path) -> None:
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("name,number,timezone\nContact1,312-555-0101,America/Chicago\n"
                        "Contact2,312-555-0102,\n")
    code, out, _ = run(capsys, "contacts", "import", str(csv_file))
    assert (code, out) == (0, "imported 2 contacts\n")
    code, out, err = run(capsys, "contacts", "import", str(csv_file))
    assert code == 2 and "nothing imported" in err


def test_calls_on_an_empty_log(capsys) -> None:
    assert run(capsys, "calls")[1] == "no calls yet\n"
    assert run_json(capsys, "calls", "--since", "today", "--status", "completed") == (0, {"calls": []})


def test_tool_runs_any_declared_tool_with_json_arguments(capsys, monkeypatch) -> None:
    code, out, _ = run(capsys, "tool", "add_contact", "--args",
                       '{"name": "Contact1", "number": "312-555-0101"}')
    assert code == 0 and json.loads(out)["number"] == "+13125550101"
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"contact": "Contact1"}'))
    code, out, _ = run(capsys, "tool", "list_calls", "--args", "-")
    assert (code, json.loads(out)) == (0, {"calls": []})
    code, out, _ = run(capsys, "tool", "add_contact", "--args", '{"name": "X"')
    assert code == 2 and "not valid JSON" in json.loads(out)["error"]["message"]
    code, out, _ = run(capsys, "tool", "nope")
    assert code == 2 and json.loads(out)["error"]["code"] == "unknown_tool"


def test_config_show_masks_secrets_and_names_sources(capsys, monkeypatch, write_config) -> None:
    token = "super-secret-auth-token-7788"
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", token)
    path = write_config("twilio:\n  account_sid: AC0123456789abcdef0123456789abcdef\n")
    path.chmod(0o644)
    code, out, err = run(capsys, "config", "show")
    assert code == 0
    assert token not in out + err and "0123456789abcdef0123" not in out + err
    assert "auth_token: '****7788'" in out
    assert "# twilio.auth_token from $TWILIO_AUTH_TOKEN" in out
    assert "warning:" in err and "chmod 600" in err
    code, document = run_json(capsys, "config", "show")
    assert document["values"]["twilio"]["account_sid"] == "****cdef"


def test_config_init_then_show(capsys, home: Path) -> None:
    code, out, _ = run(capsys, "config", "init")
    assert code == 0 and (home / "config.yaml").exists()
    code, out, err = run(capsys, "config", "init")
    assert code == 5 and "already exists" in err
    code, document = run_json(capsys, "config", "show")
    assert document["values"]["voice"]["default"] == "Polly.Brian"


def test_a_broken_config_is_a_config_error(capsys, write_config) -> None:
    write_config("voice: [\n")
    code, document = run_json(capsys, "contacts")
    assert code == 5 and "line 2" in document["error"]["message"]


def test_an_unusable_home_is_explained(capsys, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("TWILIO_CALLER_HOME", str(blocker / "home"))
    code, out, err = run(capsys, "contacts")
    assert code == 5 and "set TWILIO_CALLER_HOME to a writable directory" in err
    assert "Traceback" not in out + err


def test_help_lists_the_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("add", "contacts", "update", "remove", "rename", "calls", "config", "tool"):
        assert command in out


def test_the_bin_shim_runs_the_cli(home: Path) -> None:
    env = {**os.environ, "TWILIO_CALLER_HOME": str(home)}
    shim = ROOT / "bin" / "twilio-caller"
    added = subprocess.run([shim, "add", "312-555-0123", "Contact7", "--json"],
                           capture_output=True, text=True, env=env, timeout=600)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["number"] == "+13125550123"
    listed = subprocess.run([shim, "contacts"], capture_output=True, text=True, env=env, timeout=60)
    assert "Contact7" in listed.stdout
    assert "installing" not in listed.stderr  # later runs never touch pip


@pytest.mark.parametrize(("argv", "code", "says"), [
    (["serve", "--instance", "a"], 5, "--store postgresql://"),  # a home's SQLite is one server's
    (["serve", "--instance", "no spaces!"], 2, "--instance: 1 to 40 letters"),
    (["serve", "--instance", "a", "--port", "70000"], 2, "--port must be between 0 and 65535"),
    (["serve", "--store", "postgresql://db.example/x"], 2, "add --instance ID"),
    (["serve", "--public-url", "https://calls.example.com"], 2, "add --instance ID"),
])
def test_a_shared_deployments_flags_are_refused_clearly_and_nothing_starts(
        capsys, home: Path, argv: list[str], code: int, says: str) -> None:
    from twilio_caller.server.runfile import read_run_file

    returned, _, err = run(capsys, *argv)
    assert returned == code and says in err and "Traceback" not in err
    assert read_run_file(home) is None
