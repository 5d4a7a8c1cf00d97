"""The safety validator, rule by rule, with an injected clock."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twilio_caller import call_request, safety
from twilio_caller.calls import CallWriter
from twilio_caller.clock import ManualClock
from twilio_caller.errors import InternalError, InvalidInputError
from twilio_caller.runtime import Runtime
from twilio_caller.transport.twilio.calls import Credentials, Telephony

CHICAGO = ZoneInfo("America/Chicago")


def at(text: str, zone: ZoneInfo = CHICAGO) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@pytest.fixture
def book(runtime: Runtime, write_config):
    def configure(text: str = "") -> Runtime:
        write_config(text)
        return runtime

    return configure


def request(rt: Runtime, to: str, message: str = "Hello") -> call_request.CallRequest:
    return call_request.from_arguments(rt.contacts, rt.settings, {"to": to, "message": message})


def decide(rt: Runtime, to: str, now: datetime) -> safety.Decision:
    decision, _ = safety.reserve(rt.store.ledger, request(rt, to), now, safety.Rules.from_settings(rt.settings),
                                 tool="test", new_call=None)
    return decision


@pytest.fixture(scope="module")
def twilio():
    """The simulator every placed call goes to (its TwiML requests go nowhere: these tests
    look at the gate, and at what reached the Calls API)."""
    from twilio_caller.simulator import Simulator, SimulatorThread

    simulator = Simulator(account_sid="AC" + "2" * 32, auth_token="safety-token", time_scale=1000)
    with SimulatorThread(simulator) as running:
        yield simulator, running.base_url


@pytest.fixture(autouse=True)
def _dial_through(twilio) -> None:
    global _TWILIO
    _TWILIO = twilio


_TWILIO = None  # (simulator, base URL) for place(), set for every test of this module


def place(rt: Runtime, to: str, now: datetime) -> tuple[safety.Decision, safety.Approval | None]:
    """Place the call the way the server does — Dialer.call: parser → safety → telephony —
    with the clock at `now`; the decision and approval are read back from the audit."""
    from twilio_caller.dialer import Dialer
    from twilio_caller.errors import RefusedError

    simulator, base_url = _TWILIO
    server = Runtime(rt.home, clock=ManualClock(now))  # the server's runtime, its clock at `now`
    credentials = Credentials(simulator.account_sid, simulator.auth_token, "+13125550100", base_url)
    dialer = Dialer(server, Telephony(credentials, server.store.ledger), "http://127.0.0.1:9")
    dialled_before = len(simulator.calls)

    async def dial() -> None:
        try:
            await dialer.call({"to": to, "message": "Hello"})
        finally:
            await dialer.close()

    refusal = None
    try:
        asyncio.run(dial())
    except RefusedError as exc:
        refusal = exc
    finally:
        server.close()
    row = rt.store.query("SELECT * FROM safety_decisions ORDER BY id DESC LIMIT 1")[0]
    if refusal is not None:
        assert len(simulator.calls) == dialled_before  # refused: nothing reached the Calls API
        at = datetime.fromisoformat(refusal.next_allowed_at) if refusal.next_allowed_at else None
        return safety.Decision(False, refusal.rule, refusal.reason, at), None
    assert len(simulator.calls) == dialled_before + 1
    limit = safety.Rules.from_settings(rt.settings).max_duration_seconds
    return (safety.Decision(True, None, row["reason"]),
            safety.Approval(row["id"], row["call_id"], row["to_number"], limit))


ALL_DAY_CALLEE = "safety: {callee_hours: null}\n"


@pytest.mark.parametrize(
    ("local", "allowed", "next_allowed"),
    [
        ("2026-06-10 06:59:59", False, "2026-06-10 07:00:00"),
        ("2026-06-10 07:00:00", True, None),
        ("2026-06-10 22:59:59", True, None),
        ("2026-06-10 23:00:00", False, "2026-06-11 07:00:00"),
        # DST starts 2026-03-08 02:00 CST → 03:00 CDT; ends 2026-11-01 02:00 CDT → 01:00 CST
        ("2026-03-08 06:59:59", False, "2026-03-08 07:00:00"),
        ("2026-03-08 07:00:00", True, None),
        ("2026-03-07 23:30:00", False, "2026-03-08 07:00:00"),
        ("2026-11-01 01:30:00", False, "2026-11-01 07:00:00"),
        ("2026-11-01 07:00:00", True, None),
    ],
)
def test_owner_calling_hours(book, local: str, allowed: bool, next_allowed: str | None) -> None:
    rt = book(ALL_DAY_CALLEE)
    rt.contacts.add("Contact1", "312-555-0101", "America/Chicago")
    decision = decide(rt, "Contact1", at(local))
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule == "calling_hours"
        assert decision.next_allowed_at == at(next_allowed)
        assert decision.next_allowed_at.utcoffset() == at(next_allowed).utcoffset()


def test_dst_moves_the_window_in_utc(book) -> None:
    rt = book(ALL_DAY_CALLEE)
    rt.contacts.add("Contact1", "312-555-0101")
    spring = decide(rt, "Contact1", at("2026-03-07 23:30:00"))
    assert spring.next_allowed_at.astimezone(timezone.utc) == datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)
    autumn = decide(rt, "Contact1", at("2026-10-31 23:30:00"))
    assert autumn.next_allowed_at.astimezone(timezone.utc) == datetime(2026, 11, 1, 13, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("number", "zone", "chicago_time", "rule"),
    [
        ("415-555-0104", None, "2026-06-10 20:30:00", None),  # 18:30 in Los Angeles, from the number
        ("212-555-0103", None, "2026-06-10 20:30:00", "callee_hours"),  # 21:30 in New York
        ("312-555-0101", "Europe/London", "2026-06-10 20:30:00", "callee_hours"),  # contact's zone wins
        ("312-555-0101", "Asia/Tokyo", "2026-06-10 12:00:00", "callee_hours"),  # 02:00 in Tokyo
        ("312-555-0101", "Asia/Tokyo", "2026-06-10 20:30:00", None),  # 10:30 next day in Tokyo
        ("800-555-0199", None, "2026-06-10 12:00:00", "callee_timezone_unknown"),  # toll-free
        ("907-555-0100", None, "2026-06-10 12:00:00", "callee_timezone_unknown"),  # Alaska: two zones
        ("800-555-0199", "America/Denver", "2026-06-10 12:00:00", None),
        ("416-555-0106", None, "2026-06-10 12:00:00", None),  # Toronto
    ],
)
def test_callee_local_hours(book, number: str, zone: str | None, chicago_time: str, rule: str | None) -> None:
    rt = book()
    rt.contacts.add("Callee", number, zone)
    decision = decide(rt, "Callee", at(chicago_time))
    assert decision.rule == rule
    if rule == "callee_timezone_unknown":
        assert "set the contact's timezone" in decision.reason


def test_next_allowed_respects_both_windows(book) -> None:
    rt = book()
    rt.contacts.add("Contact3", "212-555-0103")  # New York
    decision = decide(rt, "Contact3", at("2026-06-10 20:30:00"))
    assert decision.next_allowed_at == at("2026-06-11 08:00:00", ZoneInfo("America/New_York"))


def test_daily_cap_at_9_10_11(book) -> None:
    rt = book("safety: {callee_hours: null, min_seconds_between_calls_to_contact: 0, max_concurrent_calls: 100}\n")
    rt.contacts.add("Contact1", "312-555-0101")
    start = at("2026-06-10 09:00:00")
    outcomes = [place(rt, "Contact1", start + timedelta(minutes=n))[0] for n in range(11)]
    assert [d.allowed for d in outcomes] == [True] * 10 + [False]
    assert outcomes[-1].rule == "daily_cap"
    assert outcomes[-1].next_allowed_at == at("2026-06-11 07:00:00")
    assert place(rt, "Contact1", at("2026-06-11 07:00:00"))[0].allowed  # a new day in Chicago


def test_a_call_twilio_refused_does_not_count(book) -> None:
    rt = book("safety: {callee_hours: null, min_seconds_between_calls_to_contact: 0, max_calls_per_contact_per_day: 1}\n")
    rt.contacts.add("Contact1", "312-555-0101")
    _, approval = place(rt, "Contact1", at("2026-06-10 09:00:00"))
    CallWriter(rt.store, rt.clock).not_placed(approval.call_id, "Twilio error 21211")
    assert place(rt, "Contact1", at("2026-06-10 09:01:00"))[0].allowed


def test_global_cap_concurrency_and_gap(book) -> None:
    rt = book("safety: {callee_hours: null, max_calls_per_day: 3, max_concurrent_calls: 2,"
              " min_seconds_between_calls_to_contact: 60}\n")
    for n in range(1, 5):
        rt.contacts.add(f"Contact{n}", f"312-555-010{n}")
    now = at("2026-06-10 09:00:00")
    assert place(rt, "Contact1", now)[0].allowed
    gap = place(rt, "Contact1", now + timedelta(seconds=30))[0]
    assert gap.rule == "min_gap" and gap.next_allowed_at == now + timedelta(seconds=60)
    assert place(rt, "Contact2", now)[0].allowed
    assert place(rt, "Contact3", now)[0].rule == "concurrency"  # two live calls
    rt.store.query("UPDATE calls SET status = 'completed'")
    assert place(rt, "Contact3", now)[0].allowed
    rt.store.query("UPDATE calls SET status = 'completed'")
    capped = place(rt, "Contact4", now)[0]
    assert capped.rule == "global_daily_cap" and capped.next_allowed_at == at("2026-06-11 07:00:00")


@pytest.mark.parametrize(
    ("to", "region", "rule"),
    [
        ("911", "US", "never_dial"),
        ("112", "US", "never_dial"),
        ("999", "GB", "never_dial"),
        ("000", "AU", "never_dial"),
        ("22395", "US", "never_dial"),  # a short code
        ("611", "US", "never_dial"),
        ("+1 900 555 0100", "US", "never_dial"),  # premium rate
        ("+44 909 879 0000", "US", "never_dial"),  # UK premium rate
        ("+44 843 000 0000", "US", "never_dial"),  # UK shared cost
        ("+1 809 555 0123", "US", "country"),  # the Dominican Republic, not the US
        ("+44 20 7946 0958", "US", "country"),
        ("+1 312 555 0177", "US", "allowlist"),  # fine, but nobody's contact
    ],
)
def test_numbers_never_dialled(book, to: str, region: str, rule: str) -> None:
    rt = book(f"phone_region: {region}\nsafety: {{callee_hours: null, allowed_countries: [US, CA]}}\n")
    assert decide(rt, to, at("2026-06-10 12:00:00")).rule == rule


def test_the_allowlist_cannot_override_never_dial_or_blocked(book) -> None:
    rt = book("safety: {callee_hours: null, blocked: ['(312) 555-0101']}\n")
    with pytest.raises(InvalidInputError, match="premium-rate"):
        rt.contacts.add("Premium", "+1 900 555 0100")  # it never even becomes a contact
    rt.contacts.add("Blocked", "312-555-0101")
    assert decide(rt, "+1 900 555 0100", at("2026-06-10 12:00:00")).rule == "never_dial"
    blocked = decide(rt, "Blocked", at("2026-06-10 03:00:00"))  # blocked wins even over hours
    assert blocked.rule == "blocked" and blocked.next_allowed_at is None


def test_opted_out_contacts_are_refused_until_opted_in(book) -> None:
    rt = book(ALL_DAY_CALLEE)
    rt.contacts.add("Contact1", "312-555-0101")
    rt.contacts.opt_out("+13125550101")
    refused = decide(rt, "Contact1", at("2026-06-10 12:00:00"))
    assert refused.rule == "opted_out" and "--opt-in" in refused.reason and not refused.allowed
    placed, approval = place(rt, "Contact1", at("2026-06-10 12:00:00"))  # and nothing is dialled
    assert (placed.allowed, placed.rule, approval) == (False, "opted_out", None)
    rt.contacts.update("Contact1", opt_in=True)
    assert decide(rt, "Contact1", at("2026-06-10 12:00:00")).allowed


@pytest.mark.parametrize(
    ("opening", "required", "allowed"),
    [
        ("Hi, this is {assistant}, {owner}'s AI assistant.", True, True),
        ("Hello, {assistant} here, an artificial intelligence calling for {owner}.", True, True),
        ("Hi, it's {owner}'s assistant.", True, False),
        ("Hi, this is {assistant} calling for {owner}.", True, False),
        ("Hi, this is {assistant} calling for {owner}.", False, True),
    ],
)
def test_disclosure(book, opening: str, required: bool, allowed: bool) -> None:
    rt = book(f'identity: {{opening: "{opening}"}}\nsafety: {{callee_hours: null, disclosure_required: {str(required).lower()}}}\n')
    rt.contacts.add("Contact1", "312-555-0101")
    decision = decide(rt, "Contact1", at("2026-06-10 12:00:00"))
    assert decision.allowed is allowed
    assert allowed or decision.rule == "disclosure"


def test_every_decision_is_audited_with_the_message_truncated(book) -> None:
    rt = book(ALL_DAY_CALLEE)
    rt.contacts.add("Contact1", "312-555-0101")
    safety.reserve(rt.store.ledger, request(rt, "Contact1", "x" * 500), at("2026-06-10 12:00:00"),
                   safety.Rules.from_settings(rt.settings), tool="call", new_call=None)
    decide(rt, "911", at("2026-06-10 12:00:00"))
    rows = rt.store.query("SELECT tool, to_number, allowed, rule, reason, message FROM safety_decisions ORDER BY id")
    assert [(r["allowed"], r["rule"]) for r in rows] == [(1, None), (0, "never_dial")]
    assert len(rows[0]["message"]) == 200 and rows[0]["message"].endswith("…")


def dead_telephony(rt: Runtime) -> Telephony:
    credentials = Credentials("AC" + "0" * 32, "token-for-tests", "+13125550100", "http://127.0.0.1:9")
    return Telephony(credentials, rt.store.ledger)


def test_telephony_refuses_without_an_approved_decision(book) -> None:
    rt = book(ALL_DAY_CALLEE)
    rt.contacts.add("Contact1", "312-555-0101")
    telephony = dead_telephony(rt)
    forged = safety.Approval(decision_id=1, call_id="call_forged", to_number="+13125550101", time_limit=300)
    with pytest.raises(InternalError, match="no approved safety decision"):
        telephony.create_call(forged, url="http://127.0.0.1/x", status_callback="http://127.0.0.1/y", ring_timeout=30)
    decision, approval = place(rt, "Contact1", at("2026-06-10 12:00:00"))
    redirected = safety.Approval(approval.decision_id, approval.call_id, "+13125550199", 300)
    with pytest.raises(InternalError):
        telephony.create_call(redirected, url="http://127.0.0.1/x", status_callback="http://127.0.0.1/y", ring_timeout=30)


NEW_YORK = ZoneInfo("America/New_York")
SPECIAL = {"911": "never_dial", "+1 900 555 0100": "never_dial", "+1 312 555 0177": "allowlist",
           "+1 809 555 0123": "country"}


def expected_rule(target: str, now: datetime, prior_calls: int) -> str | None:
    """An oracle written from the rules, not from the code: the default hours (owner 07-23
    in Chicago, callee 08-21 in their zone), at most 3 live calls, 3 a day per contact."""
    if target in SPECIAL:
        return SPECIAL[target]
    owner_open = 7 <= now.astimezone(CHICAGO).hour < 23
    callee_zone = NEW_YORK if target == "Contact2" else CHICAGO

    def callee_open(zone: ZoneInfo) -> bool:
        return 8 <= now.astimezone(zone).hour < 21

    if not owner_open:
        return "calling_hours"
    if not callee_open(callee_zone):
        return "callee_hours"
    placed_before = min(prior_calls, 3) if callee_open(CHICAGO) else 0  # the prior calls go to Contact1
    if placed_before >= 3:
        return "concurrency"
    return None


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    minutes=st.integers(min_value=0, max_value=7 * 24 * 60),
    target=st.sampled_from(["Contact1", "Contact2", "911", "+1 900 555 0100", "+1 312 555 0177", "+1 809 555 0123"]),
    prior_calls=st.integers(min_value=0, max_value=4),
)
def test_no_refused_request_ever_reaches_telephony(book, minutes: int, target: str, prior_calls: int) -> None:
    rt = book("safety: {max_calls_per_contact_per_day: 3, min_seconds_between_calls_to_contact: 0}\n")
    if not rt.contacts.all():
        rt.contacts.add("Contact1", "312-555-0101")
        rt.contacts.add("Contact2", "212-555-0102", "America/New_York")
    rt.store.query("DELETE FROM safety_decisions")
    rt.store.query("DELETE FROM calls")
    now = at("2026-06-08 00:00:00") + timedelta(minutes=minutes)
    for _ in range(prior_calls):
        place(rt, "Contact1", now)
    decision, approval = place(rt, target, now)  # place() asserts what reached the Calls API
    assert decision.rule == expected_rule(target, now, prior_calls)
    assert decision.allowed is (decision.rule is None)
    if decision.allowed:
        assert approval is not None
        return
    assert approval is None
    audited = rt.store.query("SELECT allowed, rule FROM safety_decisions ORDER BY id DESC LIMIT 1")[0]
    assert (audited["allowed"], audited["rule"]) == (0, decision.rule)
    last = rt.store.query("SELECT id FROM safety_decisions ORDER BY id DESC LIMIT 1")[0]["id"]
    with pytest.raises(InternalError):  # refused before any network request could be made
        dead_telephony(rt).create_call(
            safety.Approval(last, "call_none", "+13125550101", 300),
            url="http://127.0.0.1/x", status_callback="http://127.0.0.1/y", ring_timeout=30,
        )


@pytest.mark.parametrize(
    ("local", "allowed"),
    [("21:59:59", False), ("22:00:00", True), ("23:59:59", True), ("00:00:00", True),
     ("05:59:59", True), ("06:00:00", False), ("12:00:00", False)],
)
def test_calling_hours_that_wrap_midnight(book, local: str, allowed: bool) -> None:
    rt = book('safety: {calling_hours: "22:00-06:00", callee_hours: null}\n')
    rt.contacts.add("Contact1", "312-555-0101")
    decision = place(rt, "Contact1", at(f"2026-06-10 {local}"))[0]
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule == "calling_hours"
        assert decision.next_allowed_at == at("2026-06-10 22:00:00")
        assert decision.reason.startswith(f"it is {local[:5]} CDT, outside the calling hours 22:00-06:00")


def test_callee_hours_that_wrap_midnight(book) -> None:
    rt = book('safety: {calling_hours: "00:00-24:00", callee_hours: "22:00-06:00"}\n')
    rt.contacts.add("Tokyo", "312-555-0101", "Asia/Tokyo")
    assert place(rt, "Tokyo", at("2026-06-10 12:00:00"))[0].allowed  # 02:00 in Tokyo
    refused = place(rt, "Tokyo", at("2026-06-10 18:00:00"))[0]  # 08:00 in Tokyo
    assert refused.rule == "callee_hours"
    assert refused.next_allowed_at == at("2026-06-11 22:00:00", ZoneInfo("Asia/Tokyo"))


def test_an_empty_window_is_never_open() -> None:
    window = safety.Window.parse("10:00-10:00")
    day = at("2026-06-10 00:00:00")
    assert not any(window.contains(day + timedelta(minutes=m), CHICAGO) for m in range(0, 24 * 60, 7))
    assert not window.contains(at("2026-06-10 10:00:00"), CHICAGO)
    whole = safety.Window.parse("00:00-24:00")
    assert all(whole.contains(day + timedelta(minutes=m), CHICAGO) for m in range(0, 24 * 60, 7))


def test_the_min_gap_boundary(book) -> None:
    rt = book("safety: {callee_hours: null, min_seconds_between_calls_to_contact: 60}\n")
    rt.contacts.add("Contact1", "312-555-0101")
    first = at("2026-06-10 12:00:00")
    assert place(rt, "Contact1", first)[0].allowed
    rt.store.query("UPDATE calls SET status = 'completed'")
    early = place(rt, "Contact1", first + timedelta(seconds=59))[0]
    assert early.rule == "min_gap" and early.next_allowed_at == first + timedelta(seconds=60)
    assert "wait 2 s" in early.reason
    assert place(rt, "Contact1", first + timedelta(seconds=60))[0].allowed


@pytest.mark.parametrize("entry", ["tel:+13125550101", "+1-312-555-0101#"])
def test_an_unparsable_blocked_entry_still_blocks_its_digits(book, entry: str) -> None:
    rt = book(f"safety: {{callee_hours: null, blocked: ['{entry}']}}\n")
    rt.contacts.add("Contact1", "312-555-0101")
    rt.contacts.add("Contact2", "312-555-0102")
    assert place(rt, "Contact1", at("2026-06-10 12:00:00"))[0].rule == "blocked"
    assert place(rt, "Contact2", at("2026-06-10 12:00:00"))[0].allowed


def test_a_message_of_exactly_200_characters_is_audited_whole(book) -> None:
    rt = book(ALL_DAY_CALLEE)
    rt.contacts.add("Contact1", "312-555-0101")
    safety.reserve(rt.store.ledger, request(rt, "Contact1", "y" * 200), at("2026-06-10 12:00:00"),
                   safety.Rules.from_settings(rt.settings), tool="call", new_call=None)
    assert rt.store.query("SELECT message FROM safety_decisions")[0]["message"] == "y" * 200


@pytest.mark.parametrize(("speech", "opted_out"), [
    ("Please don't call me again", True), ("Don’t call me", True), ("take me off your list", True),
    ("unsubscribe", True), ("stop calling", True), ("Sure, call me tomorrow", False), ("I'll be there", False),
])
def test_opt_out_phrases(speech: str, opted_out: bool) -> None:
    assert safety.is_opt_out(speech) is opted_out


def test_the_report_shows_the_rules_in_force_and_todays_usage(book) -> None:
    rt = book("safety: {callee_hours: null, max_calls_per_day: 1, max_calls_per_contact_per_day: 1}\n")
    rt.contacts.add("Contact1", "312-555-0101")
    rt.contacts.add("Contact2", "312-555-0102")
    rt.contacts.opt_out("+13125550102")
    now = at("2026-06-10 12:00:00")
    assert place(rt, "Contact1", now)[0].allowed
    report = safety.report(rt.store, safety.Rules.from_settings(rt.settings), now + timedelta(minutes=1, microseconds=7))
    assert report["rules"]["callee_hours"] is None
    assert report["rules"]["calling_hours"] == "07:00-23:00"
    assert report["now"] == {"owner_time": "2026-06-10T12:01:00-05:00", "within_calling_hours": True}
    assert report["today"]["calls"] == 1 and report["today"]["remaining"] == 0
    assert report["today"]["live_calls"] == 1
    assert report["today"]["contacts"] == [
        {"name": "Contact1", "number": "+13125550101", "calls": 1, "remaining": 0, "opted_out": False},
        {"name": "Contact2", "number": "+13125550102", "calls": 0, "remaining": 1, "opted_out": True},
    ]
    rules = dataclasses.replace(safety.Rules.from_settings(rt.settings), callee_hours=safety.Window.parse("09:00-17:00"))
    evening = safety.report(rt.store, rules, at("2026-06-10 23:30:00"))
    assert evening["rules"]["callee_hours"] == "09:00-17:00"
    assert evening["now"]["within_calling_hours"] is False


@pytest.mark.parametrize(("identity", "missing"), [
    ("", "identity.assistant_name and identity.owner_name"),
    ("identity: {owner_name: Sam}\n", "identity.assistant_name in"),
    ("identity: {assistant_name: Ada, owner_name: Sam}\n", None),
])
def test_real_calls_need_the_assistant_and_owner_named(book, identity: str, missing: str | None) -> None:
    from twilio_caller.errors import ConfigError

    rt = book(identity)
    if missing is None:
        safety.require_identity(rt.config)
        return
    with pytest.raises(ConfigError, match=f"set {missing}"):
        safety.require_identity(rt.config)
