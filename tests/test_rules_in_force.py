"""The safety gate reads the rules in force: config.yaml and the environment are edited under
a running server, and the very next call obeys — the dry run and the real call never disagree,
and a refused call never reaches the Calls API."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from twilio_caller.errors import ConfigError, RefusedError, ServerUnavailableError
from twilio_caller.invocation import Invocation
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime
from twilio_caller.server.client import ensure_server, find_server
from twilio_caller.simulator import InteractiveCallee, Simulator, SimulatorThread


def edit(home: Path, **sections: dict) -> None:
    """Change keys of config.yaml in place (a section's keys are merged)."""
    path = home / "config.yaml"
    data = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(data))


def both_refuse(server, rule: str, to: str = "Contact1") -> None:
    """The dry run and the real call refuse with the same rule, and nothing is dialled."""
    dialled = len(server.simulator.calls)
    with pytest.raises(RefusedError) as dry:
        server.tool("call", to=to, message="Hello", dry_run=True)
    with pytest.raises(RefusedError) as real:
        server.tool("call", to=to, message="Hello")
    assert dry.value.rule == real.value.rule == rule
    assert len(server.simulator.calls) == dialled


def both_allow(server, to: str = "Contact1") -> dict:
    assert server.tool("call", to=to, message="Hello", dry_run=True)["allowed"] is True
    result = server.tool("call", to=to, message="Hello")
    assert result["status"] == "completed"
    return result


def call_with_callee(server, callee: dict) -> dict:
    """A simulated call whose invocation scripts the callee (as `call --simulate --callee`)."""
    return invoke("call", {"to": "Contact1", "message": "Hello"}, server.runtime,
                  Invocation(simulate=True, callee=callee))


def closed_window() -> str:
    """An hour-long UTC window that does not hold the current time."""
    hour = datetime.now(timezone.utc).hour
    start = hour + 2 if hour <= 20 else hour - 4
    return f"{start:02d}:00-{start + 1:02d}:00"


def test_a_number_blocked_after_the_server_started_is_never_dialled(live_server, home: Path) -> None:
    both_allow(live_server)  # the server is up and has loaded the config
    edit(home, safety={"blocked": ["+13125550001"]})
    both_refuse(live_server, "blocked")
    edit(home, safety={"blocked": []})
    both_allow(live_server)


def test_calling_hours_apply_as_edited_both_ways(live_server, home: Path) -> None:
    both_allow(live_server)
    edit(home, safety={"timezone": "UTC", "calling_hours": closed_window()})
    both_refuse(live_server, "calling_hours")
    edit(home, safety={"calling_hours": "00:00-24:00"})  # widened again: the server allows at once
    both_allow(live_server)


def test_a_daily_cap_lowered_below_todays_count_refuses_the_next_call(live_server, home: Path) -> None:
    both_allow(live_server)
    both_allow(live_server, "Contact2")
    edit(home, safety={"max_calls_per_day": 1})
    both_refuse(live_server, "global_daily_cap", "Contact3")


def test_a_contact_who_opted_out_is_refused_by_the_running_server(live_server) -> None:
    both_allow(live_server)
    live_server.runtime.contacts.opt_out("+13125550001")
    both_refuse(live_server, "opted_out")


def test_a_config_that_no_longer_validates_refuses_calls_never_the_old_rules(live_server, home: Path) -> None:
    both_allow(live_server)
    good = (home / "config.yaml").read_text()
    (home / "config.yaml").write_text(good + "safety: {max_calls_per_day: -3}\n")
    dialled = len(live_server.simulator.calls)
    for dry_run in (True, False):
        with pytest.raises(ConfigError, match="max_calls_per_day"):
            live_server.tool("call", to="Contact1", message="Hello", dry_run=dry_run)
    assert len(live_server.simulator.calls) == dialled
    (home / "config.yaml").write_text(good)
    both_allow(live_server)


def test_a_callee_script_applies_to_the_call_that_asked_for_it(live_server) -> None:
    assert call_with_callee(live_server, {"answer": "busy"})["status"] == "busy"
    assert live_server.tool("call", to="Contact1", message="Hello")["status"] == "completed"


def test_a_callee_set_for_the_server_comes_back_after_a_per_call_script(live_server) -> None:
    live_server.script("Contact1", answer="no-answer")
    assert call_with_callee(live_server, {"answer": "busy"})["status"] == "busy"
    assert live_server.tool("call", to="Contact1", message="Hello")["status"] == "no-answer"


# -- settings a server cannot change: new credentials and endpoint, two stand-in Twilios ------

LIVE_CONFIG = """\
identity: {assistant_name: Ada, owner_name: Sam}
safety: {calling_hours: "00:00-24:00", callee_hours: null, min_seconds_between_calls_to_contact: 0}
webhook: {port: 0}
conversation: {hold_budget_seconds: 0.5, unsteered_limit_seconds: 30}
server: {idle_exit_seconds: 120}
"""


@pytest.fixture
def two_twilios():
    first = Simulator(account_sid="AC" + "1" * 32, auth_token="1" * 32, time_scale=20)
    second = Simulator(account_sid="AC" + "2" * 32, auth_token="2" * 32, time_scale=20)
    with SimulatorThread(first) as one, SimulatorThread(second) as two:
        yield (first, one.base_url), (second, two.base_url)


def use_account(monkeypatch, simulator: Simulator, base_url: str) -> None:
    monkeypatch.setenv("TWILIO_API_BASE_URL", base_url)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", simulator.account_sid)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", simulator.auth_token)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+13125550100")


@pytest.fixture
def live_client(home: Path):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(LIVE_CONFIG)
    runtime = Runtime(home)  # reads os.environ as it is at each call
    runtime.contacts.add("Contact1", "312-555-0101")
    yield runtime
    server = find_server(home)
    if server is not None:
        server.stop()
    runtime.close()


def test_new_credentials_and_endpoint_reach_the_next_call(two_twilios, live_client, monkeypatch) -> None:
    (first, first_url), (second, second_url) = two_twilios
    use_account(monkeypatch, first, first_url)
    placed = invoke("call", {"to": "Contact1", "message": "Hello"}, live_client)
    assert placed["status"] == "completed" and len(first.calls) == 1
    old_pid = find_server(live_client.home).info["pid"]

    use_account(monkeypatch, second, second_url)  # a rotated token, another account and endpoint
    assert invoke("call", {"to": "Contact1", "message": "Hello", "dry_run": True}, live_client)["allowed"]
    placed = invoke("call", {"to": "Contact1", "message": "Hello"}, live_client)
    assert placed["status"] == "completed"
    assert len(first.calls) == 1 and len(second.calls) == 1  # the old account saw nothing more
    assert second.calls[0].account_sid == second.account_sid
    assert find_server(live_client.home).info["pid"] != old_pid  # the idle server was replaced


def test_a_server_with_live_calls_is_not_replaced_but_named(two_twilios, live_client, monkeypatch) -> None:
    (first, first_url), (second, _) = two_twilios
    use_account(monkeypatch, first, first_url)
    first.set_callee("+13125550101", InteractiveCallee(lambda heard: "Hi", ring_seconds=0.1))
    live = invoke("call", {"to": "Contact1", "message": "Hello", "keep_open": True}, live_client)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", second.auth_token)
    with pytest.raises(ServerUnavailableError) as refused:
        invoke("call", {"to": "Contact1", "message": "Hello"}, live_client)
    message = refused.value.message
    assert live["call_id"] in message and "server stop --force" in message and "twilio.auth_token" in message
    assert second.auth_token not in message
    assert len(first.calls) == 1 and len(second.calls) == 0
    invoke("hangup", {"call_id": live["call_id"]}, live_client)


def test_server_status_shows_the_settings_masked_and_whether_current(
        two_twilios, live_client, monkeypatch, capsys) -> None:
    import json

    from twilio_caller.cli import main

    (first, first_url), (second, _) = two_twilios
    use_account(monkeypatch, first, first_url)
    ensure_server(live_client.home, simulate=False)
    assert main(["server", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["current"] is True and status["settings"]["twilio.api_base_url"] == first_url
    assert status["settings"]["twilio.auth_token"] == "****1111" and first.auth_token not in json.dumps(status)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", second.auth_token)
    assert main(["server", "status"]) == 0
    text = capsys.readouterr().out
    assert "not current: twilio.auth_token changed" in text and second.auth_token not in text


def test_the_server_itself_refuses_a_fixed_setting_edited_under_it(live_server, home: Path) -> None:
    """An agent that talks to the control API directly (no client-side check) still never
    dials with settings the server cannot apply."""
    from twilio_caller.server.client import ServerClient
    from twilio_caller.server.runfile import read_run_file

    control = ServerClient(read_run_file(home))
    arguments = {"to": "Contact1", "message": "Hello"}
    assert control.invoke("call", arguments, wait_seconds=20)["status"] == "completed"
    good = (home / "config.yaml").read_text()
    edit(home, twilio={"from_number": "+13125550199"})
    with pytest.raises(ServerUnavailableError, match="twilio.from_number"):
        control.invoke("call", arguments, wait_seconds=20)
    assert len(live_server.simulator.calls) == 1
    (home / "config.yaml").write_text(good)
    assert control.invoke("call", arguments, wait_seconds=20)["status"] == "completed"
