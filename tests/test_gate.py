"""The safety gate seen from outside: a refused call is refused *and* nothing reached the
Calls API (asserted at the simulator's records); what is dialled carries TimeLimit; when
Twilio ignores it the server hangs up itself; a cap holds under a real start barrier."""

from __future__ import annotations

import asyncio
import multiprocessing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import TEST_CONFIG, LiveServer
from twilio_caller import dialer as dialer_module
from twilio_caller.errors import RefusedError
from twilio_caller.runtime import Runtime


def zone_at_hour(hour: int) -> str:
    """A fixed-offset zone where the local time is now `hour`:xx (the server's clock is real)."""
    offset = (hour - datetime.now(timezone.utc).hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


@pytest.fixture
def gated(home: Path):
    """start(safety rules, more config) → a live simulate-mode server with those rules."""
    servers: list[LiveServer] = []

    def start(safety: str, extra: str = "", unsteered: float = 1.5) -> LiveServer:
        server = LiveServer(home, time_scale=50, hold=0.3, unsteered=unsteered)
        base = TEST_CONFIG.format(hold=0.3, unsteered=unsteered).replace("webhook:\n", f"{safety}webhook:\n", 1)
        (home / "config.yaml").write_text(base + extra)
        servers.append(server)
        server.thread.start()
        return server

    yield start
    for server in servers:
        server.thread.stop()
        server.runtime.close()


REFUSALS = [  # (to, rule)
    ("+13125550177", "allowlist"),  # a fine number, but nobody's contact
    ("Blocked", "blocked"),
    ("22395", "never_dial"),  # a short code
    ("+19005550100", "never_dial"),  # premium rate (it cannot even be a contact)
    ("London", "country"),
    ("Night", "callee_hours"),
    ("Tollfree", "callee_timezone_unknown"),
]


def test_every_refusal_dials_nothing(gated) -> None:
    gated = gated('  callee_hours: "08:00-20:00"\n  blocked: ["(312) 555-0103"]\n'
                  "  allowed_countries: [US, CA]\n")
    contacts = gated.runtime.contacts
    contacts.add("Blocked", "+13125550103", zone_at_hour(12))
    contacts.add("London", "+442079460958", "Europe/London")
    contacts.add("Night", "+13125550104", zone_at_hour(3))
    contacts.add("Tollfree", "+18005550199")
    contacts.add("Day", "+13125550105", zone_at_hour(12))
    for to, rule in REFUSALS:
        with pytest.raises(RefusedError) as refused:
            gated.tool("call", to=to, message="Hello")
        assert refused.value.rule == rule, to
    assert gated.simulator.calls == []  # nothing reached the Calls API
    assert gated.runtime.store.query("SELECT COUNT(*) FROM calls")[0][0] == 0
    placed = gated.tool("call", to="Day", message="Hello")  # the same rules let a good call through
    assert placed["status"] == "completed"
    assert [call.sid for call in gated.simulator.calls] == [placed["twilio_sid"]]


def test_the_global_daily_cap_refuses_and_dials_nothing_more(gated) -> None:
    gated = gated("  max_calls_per_day: 2\n")
    first = gated.tool("call", to="Contact1", message="One")
    second = gated.tool("call", to="Contact2", message="Two")
    with pytest.raises(RefusedError) as refused:
        gated.tool("call", to="Contact3", message="Three")
    assert refused.value.rule == "global_daily_cap"
    assert sorted(call.sid for call in gated.simulator.calls) == sorted([first["twilio_sid"], second["twilio_sid"]])


def test_the_create_request_carries_time_limit(gated) -> None:
    gated = gated("  max_duration_seconds: 123\n")
    placed = gated.tool("call", to="Contact4", message="Hi")
    options = gated.simulator.call(placed["twilio_sid"]).options
    assert options.time_limit == 123
    assert options.timeout == 30  # twilio.ring_timeout_seconds


def test_twilio_ends_a_call_at_its_time_limit(gated) -> None:
    gated = gated("  max_duration_seconds: 10\n", unsteered=1000)
    placed = gated.tool("call", to="Contact5", message="Hi", keep_open=True, wait=False)
    record = gated.simulator.wait_for_call(placed["twilio_sid"], 20)
    assert record.end_reason == "time-limit"  # 10 simulated seconds: 0.2 s at time scale 50


def test_the_server_hangs_up_when_twilio_ignores_time_limit(gated, monkeypatch) -> None:
    # the guard waits TimeLimit + grace of real time from the answer: with a grace of -9.6 s,
    # 0.4 s after it. The callee rings 2 s (100 simulated seconds): a guard counting from the
    # dialling would cancel the call while it rings (api-cancel), cutting the talk short.
    monkeypatch.setattr(dialer_module, "MAX_DURATION_GRACE_SECONDS", -9.6)
    gated = gated("  max_duration_seconds: 10\n", "twilio:\n  ring_timeout_seconds: 120\n", unsteered=1000)
    gated.simulator.chaos.ignore_time_limit = True
    gated.script("Contact6", ring_seconds=100)
    placed = gated.tool("call", to="Contact6", message="Hi", keep_open=True, wait=False)
    record = gated.simulator.wait_for_call(placed["twilio_sid"], 60)
    assert record.answered_at is not None
    assert record.end_reason == "api-hangup"  # the server's hang-up: nothing else ends this call
    assert record.status == "completed"


# -- the cap under a real start barrier, through the dialer's own path ---------------------


def _dial_after_barrier(home: str, api_base_url: str, account: tuple[str, str], attempts: int,
                        barrier, results) -> None:
    from twilio_caller.dialer import Dialer
    from twilio_caller.transport.twilio.calls import Credentials, Telephony

    runtime = Runtime(Path(home), environ={})
    telephony = Telephony(Credentials(account[0], account[1], "+13125550199", api_base_url), runtime.store.ledger)
    dialer = Dialer(runtime, telephony, "http://127.0.0.1:9")

    async def dial() -> int:
        placed = 0
        for _ in range(attempts):
            try:
                await dialer.call({"to": "Contact1", "message": "Hello"})
                placed += 1
            except RefusedError as exc:
                assert exc.rule == "global_daily_cap", exc.rule
        await dialer.close()
        return placed

    barrier.wait(60)
    results.put(asyncio.run(dial()))
    runtime.close()


@pytest.mark.parametrize(("processes", "attempts", "cap"), [(2, 3, 3), (4, 2, 5)])
def test_a_burst_released_together_never_exceeds_the_cap(home: Path, processes: int, attempts: int,
                                                         cap: int) -> None:
    from twilio_caller.simulator import Simulator, SimulatorThread

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        "safety:\n  calling_hours: '00:00-24:00'\n  callee_hours: null\n  max_concurrent_calls: 1000\n"
        f"  max_calls_per_day: {cap}\n  max_calls_per_contact_per_day: 100\n"
        "  min_seconds_between_calls_to_contact: 0\n")
    runtime = Runtime(home, environ={})
    runtime.contacts.add("Contact1", "+13125550101", "America/Chicago")
    simulator = Simulator(account_sid="AC" + "1" * 32, auth_token="barrier-token", time_scale=1000)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    with SimulatorThread(simulator) as running:
        workers = [context.Process(target=_dial_after_barrier, args=(
            str(home), running.base_url, (simulator.account_sid, simulator.auth_token), attempts, barrier, results))
            for _ in range(processes)]
        for worker in workers:
            worker.start()
        placed = sum(results.get(timeout=120) for _ in workers)
        for worker in workers:
            worker.join(30)
        assert placed == cap
        assert len(simulator.calls) == cap  # what Twilio saw
    assert runtime.store.query("SELECT COUNT(*) FROM calls WHERE placed = 1")[0][0] == cap
    runtime.close()


def test_the_daily_cap_counts_the_owners_day_not_utcs(home: Path) -> None:
    from twilio_caller import call_request, safety
    from twilio_caller.store.ports import NewCall

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        "safety:\n  timezone: Asia/Tokyo\n  calling_hours: '00:00-24:00'\n  callee_hours: null\n"
        "  max_calls_per_day: 1\n  min_seconds_between_calls_to_contact: 0\n")
    runtime = Runtime(home, environ={})
    runtime.contacts.add("Contact1", "+13125550101")
    runtime.contacts.add("Contact2", "+13125550102")
    tokyo_evening = datetime(2026, 6, 10, 14, 30, tzinfo=timezone.utc)  # 23:30 in Tokyo, same UTC day
    rules = safety.Rules.from_settings(runtime.settings)

    def reserve(name: str, now: datetime) -> safety.Decision:
        request = call_request.from_arguments(runtime.contacts, runtime.settings, {"to": name, "message": "Hi"})
        decision, _ = safety.reserve(runtime.store.ledger, request, now, rules, tool="call",
                                     new_call=_record(request, now))
        return decision

    def _record(request, now: datetime) -> NewCall:
        call_id = f"call_{now:%H%M%S}{request.to_number[-2:]}"
        return NewCall(id=call_id, token="t", contact_id=request.contact.id, to_name=request.to_name,
                       to_number=request.to_number, message="Hi", mode="notify")

    assert reserve("Contact1", tokyo_evening).allowed
    next_tokyo_day = tokyo_evening + timedelta(minutes=45)  # 00:15 in Tokyo; still 15:15 UTC
    assert reserve("Contact2", next_tokyo_day).allowed
    capped = reserve("Contact2", next_tokyo_day + timedelta(minutes=1))
    assert capped.rule == "global_daily_cap"
    assert capped.next_allowed_at == datetime(2026, 6, 11, 15, 0, tzinfo=timezone.utc)  # Tokyo midnight
    runtime.close()
