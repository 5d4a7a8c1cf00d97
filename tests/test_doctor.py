from __future__ import annotations

import json
from pathlib import Path

from twilio_caller.cli import main
from twilio_caller.simulator import Simulator, SimulatorThread


def doctor(capsys, *flags: str) -> dict:
    code = main(["doctor", "--json", *flags])
    report = json.loads(capsys.readouterr().out)
    assert code == (0 if report["ok"] else 5)  # any failed check: non-zero, for scripts
    return {c["name"]: c for c in report["checks"]}


def test_doctor_fails_until_the_identity_is_set(capsys, write_config) -> None:
    checks = doctor(capsys)
    assert checks["identity"]["ok"] is False
    assert "identity.assistant_name and identity.owner_name" in checks["identity"]["fix"]
    assert main(["doctor"]) == 5
    capsys.readouterr()
    write_config("identity: {assistant_name: Ada, owner_name: Sam}\n")
    checks = doctor(capsys)
    assert checks["identity"]["ok"] is True and "Ada, Sam's AI assistant" in checks["identity"]["detail"]


def test_a_loose_home_is_tightened_or_reported(capsys, home: Path, runtime) -> None:
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    assert doctor(capsys)["home"]["ok"] is False  # doctor only looks
    runtime.contacts.all()  # first real use: the home is made private
    assert home.stat().st_mode & 0o777 == 0o700
    assert doctor(capsys)["home"]["ok"] is True


def test_an_unconfigured_machine_gets_fixes(capsys) -> None:
    checks = doctor(capsys)
    assert checks["credentials"]["ok"] is False and "TWILIO_ACCOUNT_SID" in checks["credentials"]["detail"]
    assert checks["caller id"]["ok"] is False
    assert checks["tunnel"]["ok"] is False and "public_url" in checks["tunnel"]["fix"]
    assert checks["clock"]["ok"] is True and "America/Chicago" in checks["clock"]["detail"]


def test_bad_formats_are_named_and_secrets_never_shown(capsys, monkeypatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")
    checks = doctor(capsys)
    assert checks["configuration"]["ok"] is False
    assert "TWILIO_ACCOUNT_SID" in checks["configuration"]["detail"]
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "hunter2-not-hex")
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15551234567")
    checks = doctor(capsys)
    assert "does not look like an auth token" in checks["credentials"]["detail"]
    assert checks["caller id"]["ok"] is False
    assert "hunter2" not in json.dumps(checks)


def test_online_check_against_a_twilio_stand_in(capsys, monkeypatch) -> None:
    simulator = Simulator(account_sid="AC" + "0123456789abcdef" * 2, auth_token="0123456789abcdef" * 2)
    with SimulatorThread(simulator) as running:
        monkeypatch.setenv("TWILIO_API_BASE_URL", running.base_url)
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", simulator.account_sid)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", simulator.auth_token)
        monkeypatch.setenv("TWILIO_FROM_NUMBER", "+13125550100")
        checks = doctor(capsys, "--online")
        assert checks["credentials"]["ok"] and checks["caller id"]["ok"]
        assert checks["twilio account"]["ok"] is True
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", "f" * 32)
        rejected = doctor(capsys, "--online")["twilio account"]
        assert rejected["ok"] is False and "20003" in rejected["detail"]


def test_the_public_url_is_checked_from_the_server(live_server, capsys) -> None:
    assert doctor(capsys)["public url"]["ok"] is True


def test_an_unreachable_public_url_is_reported(capsys, home: Path) -> None:
    from conftest import LiveServer

    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=5)
    with (home / "config.yaml").open("a") as config:
        config.write("public_url: http://127.0.0.1:9\n")
    server.thread.start()
    try:
        check = doctor(capsys)["public url"]
        assert check["ok"] is False and "does not reach this server" in check["detail"]
    finally:
        server.thread.stop()
