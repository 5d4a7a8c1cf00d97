"""The REST Calls API, driven by the real twilio SDK over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from twilio_caller.clock import ManualClock
from twilio_caller.simulator import CalleeScript, Simulator, SimulatorThread, ThreadedServer

from .conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, TO, Rig, make_simulator, sdk_client
from .twiml_app import TwimlApp

SPEC = Path(__file__).with_name("data") / "twilio_api_v2010_calls.openapi.json"  # Twilio's own (twilio-oai)
HANG_ON = "<Response><Pause length=\"100000\"/></Response>"  # holds the call open until told


def call_schema_validator() -> OAS30Validator:
    spec = json.loads(SPEC.read_text())
    schema = {**spec["components"]["schemas"]["api.v2010.account.call"], "components": spec["components"]}
    return OAS30Validator(schema)


def assert_valid_call(body: dict[str, Any]) -> None:
    call_schema_validator().validate(body)
    assert set(body) >= {"sid", "status", "to", "from", "direction", "uri", "subresource_uris"}
    for key in ("date_created", "date_updated", "start_time", "end_time"):
        if body[key] is not None:
            parsed = parsedate_to_datetime(body[key])
            assert parsed.utcoffset() == timedelta(0) and body[key].endswith("+0000")


def raw_get(rig: Rig, path: str, auth: tuple[str, str] = (ACCOUNT_SID, AUTH_TOKEN)) -> httpx.Response:
    return httpx.get(rig.server.base_url + path, auth=auth, trust_env=False)


def test_create_fetch_and_the_call_json_match_the_openapi_schema(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("Hello"))
    sid = rig.call()
    assert sid.startswith("CA") and len(sid) == 34
    record = rig.finish(sid)

    fetched = rig.client.calls(sid).fetch()
    assert (fetched.status, fetched.to, fetched._from, fetched.direction) == ("completed", TO, FROM, "outbound-api")
    assert fetched.account_sid == ACCOUNT_SID and fetched.api_version == "2010-04-01"
    assert fetched.duration == str(record.duration) and fetched.start_time is not None
    body = raw_get(rig, f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json").json()
    assert_valid_call(body)
    assert body["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"


def test_create_answers_201_with_a_queued_call_in_the_schema(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.hangup())
    response = httpx.post(
        f"{rig.server.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        data={"To": TO, "From": FROM, "Url": rig.app.url("/voice")},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        trust_env=False,
    )
    assert response.status_code == 201
    body = response.json()
    assert_valid_call(body)
    assert body["status"] == "queued" and body["duration"] is None and body["end_time"] is None
    rig.finish(body["sid"])


@pytest.mark.parametrize(
    ("auth", "account"),
    [((ACCOUNT_SID, "wrong-token"), ACCOUNT_SID), (("AC" + "f" * 32, AUTH_TOKEN), ACCOUNT_SID),
     ((ACCOUNT_SID, AUTH_TOKEN), "AC" + "e" * 32)],
    ids=["wrong-token", "wrong-username", "other-account-in-path"],
)
def test_wrong_credentials_or_account_answer_401_with_20003(rig: Rig, auth: tuple[str, str], account: str) -> None:
    response = raw_get(rig, f"/2010-04-01/Accounts/{account}/Calls.json", auth=auth)
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401,
    }


def test_the_sdk_sees_a_wrong_token_as_a_401(rig: Rig) -> None:
    client = sdk_client(rig.server.base_url, auth_token="not-the-token")
    with pytest.raises(TwilioRestException) as raised:
        client.calls.create(to=TO, from_=FROM, url=rig.app.url("/voice"))
    assert (raised.value.status, raised.value.code) == (401, 20003)
    assert rig.simulator.calls == []


def test_unknown_call_is_404_with_20404(rig: Rig) -> None:
    with pytest.raises(TwilioRestException) as raised:
        rig.client.calls("CA" + "0" * 32).fetch()
    assert (raised.value.status, raised.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as raised:
        rig.client.calls("CA" + "0" * 32).update(status="completed")
    assert raised.value.code == 20404


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "+1312555"}, 21211),
        ({"to": "not a number"}, 21211),
        ({"from_": "+1999"}, 21212),
        ({"url": None}, 21205),
        ({"url": "ftp://example.com/voice"}, 21205),
        ({"timeout": 601}, 21200),
        ({"timeout": 0}, 21200),
        ({"method": "PUT"}, 21200),
        ({"status_callback_event": ["initiated", "exploded"]}, 21200),
        ({"machine_detection": "Sometimes"}, 21200),
        ({"send_digits": "12x"}, 21200),
    ],
)
def test_create_rejects_what_twilio_rejects(rig: Rig, kwargs: dict[str, Any], code: int) -> None:
    arguments: dict[str, Any] = {"to": TO, "from_": FROM, "url": rig.app.url("/voice"), **kwargs}
    with pytest.raises(TwilioRestException) as raised:
        rig.client.calls.create(**arguments)
    assert (raised.value.status, raised.value.code) == (400, code)
    assert rig.simulator.calls == []


def test_from_must_be_an_owned_caller_id_and_blocked_numbers_are_refused(twiml_app) -> None:  # type: ignore[no-untyped-def]
    simulator = make_simulator(caller_ids=[FROM], blocked_numbers=["+13125550166"])
    with SimulatorThread(simulator) as server:
        client = sdk_client(server.base_url)
        with pytest.raises(TwilioRestException) as raised:
            client.calls.create(to=TO, from_="+13125550100", url=twiml_app.url("/voice"))
        assert raised.value.code == 21210 and "not yet verified" in raised.value.msg
        with pytest.raises(TwilioRestException) as raised:
            client.calls.create(to="+13125550166", from_=FROM, url=twiml_app.url("/voice"))
        assert raised.value.code == 21216


def test_inline_twiml_is_used_when_no_url_and_url_wins_over_twiml(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("from the url"))
    inline = rig.call(path="", twiml="<Response><Say>inline words</Say></Response>")
    both = rig.call(twiml="<Response><Say>ignored</Say></Response>")
    assert rig.finish(inline).heard_text == ["inline words"]
    assert rig.finish(both).heard_text == ["from the url"]


def test_twiml_longer_than_4000_characters_is_refused(rig: Rig) -> None:
    long = "<Response><Say>" + "word " * 800 + "</Say></Response>"
    with pytest.raises(TwilioRestException) as raised:
        rig.client.calls.create(to=TO, from_=FROM, twiml=long)
    assert raised.value.status == 400


def test_delete_removes_a_finished_call_but_not_a_live_one(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("short"))
    done = rig.call()
    rig.finish(done)
    assert rig.client.calls(done).delete() is True
    with pytest.raises(TwilioRestException) as raised:
        rig.client.calls(done).fetch()
    assert raised.value.code == 20404

    rig.app.say("/hang-on", lambda r: r.pause(length=100000))
    live = rig.call(path="/hang-on")
    rig.app.wait_for("/hang-on")  # answered and in progress (a ringing one would be canceled)
    with pytest.raises(TwilioRestException) as raised:
        rig.client.calls(live).delete()
    assert raised.value.status == 400
    rig.client.calls(live).update(status="completed")
    assert rig.finish(live).status == "completed"


def test_list_pages_through_every_call_with_the_sdk(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("hi"))
    sids = [rig.call() for _ in range(5)]
    for sid in sids:
        rig.finish(sid)

    listed = rig.client.calls.list(page_size=2)
    assert [call.sid for call in listed] == list(reversed(sids))  # newest first

    first = rig.client.calls.page(page_size=2)
    second = first.next_page()
    third = second.next_page()
    assert [len(list(page)) for page in (first, second, third)] == [2, 2, 1]
    assert third.next_page() is None
    assert second.previous_page() is not None


def test_list_page_shape_and_tokens(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("hi"))
    for sid in [rig.call() for _ in range(3)]:
        rig.finish(sid)
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    body = raw_get(rig, f"{path}?PageSize=2&To=%2B13125550101").json()
    assert set(body) == {"calls", "end", "first_page_uri", "next_page_uri", "page", "page_size",
                         "previous_page_uri", "start", "uri"}
    assert (body["page"], body["page_size"], body["start"], body["end"]) == (0, 2, 0, 1)
    assert body["previous_page_uri"] is None
    assert body["next_page_uri"].startswith(f"{path}?To=%2B13125550101&PageSize=2&Page=1&PageToken=PA")
    for call in body["calls"]:
        assert_valid_call(call)
    following = raw_get(rig, body["next_page_uri"]).json()
    assert (following["page"], following["start"], following["end"], len(following["calls"])) == (1, 2, 2, 1)
    assert following["next_page_uri"] is None and following["previous_page_uri"] is not None
    by_page_number = raw_get(rig, f"{path}?PageSize=2&Page=1").json()
    assert [call["sid"] for call in by_page_number["calls"]] == [call["sid"] for call in following["calls"]]


def test_list_filters_by_to_from_and_status(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.say("hi"))
    rig.simulator.set_callee("+13125550102", CalleeScript(answer="busy"))
    a = rig.call()
    b = rig.call(to="+13125550102")
    for sid in (a, b):
        rig.finish(sid)
    assert [c.sid for c in rig.client.calls.list(to="+13125550102")] == [b]
    assert [c.sid for c in rig.client.calls.list(status="busy")] == [b]
    assert [c.sid for c in rig.client.calls.list(status="completed")] == [a]
    assert {c.sid for c in rig.client.calls.list(from_=FROM)} == {a, b}
    assert rig.client.calls.list(from_="+13125550100") == []


@pytest.fixture
def dated() -> Iterator[tuple[Rig, ManualClock, list[str]]]:
    """Three calls started on 2026-03-01, 03-02 and 03-03 at 10:00 UTC."""
    clock = ManualClock(datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc))
    simulator: Simulator = make_simulator(clock=clock)
    app = TwimlApp(AUTH_TOKEN)
    with ThreadedServer(app.app) as app_server, SimulatorThread(simulator) as server:
        app.base_url = app_server.base_url
        app.say("/voice", lambda r: r.say("hi"))
        rig = Rig(simulator, server, sdk_client(server.base_url), app)
        sids = []
        for _ in range(3):
            sids.append(rig.call())
            rig.finish(sids[-1])
            clock.advance(86400)
        yield rig, clock, sids


def test_list_filters_by_start_time_day_and_ranges(dated: tuple[Rig, ManualClock, list[str]]) -> None:
    rig, _, (first, second, third) = dated
    calls = rig.client.calls
    assert [c.sid for c in calls.list(start_time=date(2026, 3, 2))] == [second]
    assert [c.sid for c in calls.list(start_time_after=date(2026, 3, 2))] == [third, second]
    assert [c.sid for c in calls.list(start_time_before=date(2026, 3, 2))] == [first]
    moment = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    assert [c.sid for c in calls.list(start_time_after=moment)] == [third]
    assert [c.sid for c in calls.list(start_time_before=moment)] == [second, first]
    assert [c.sid for c in calls.list(end_time_after=date(2026, 3, 3))] == [third]
    raw = raw_get(rig, f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json?StartTime%3E=2026-03-02&StartTime%3C=2026-03-03")
    assert [c["sid"] for c in raw.json()["calls"]] == [second]


def test_bad_list_parameters_are_400(rig: Rig) -> None:
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert raw_get(rig, f"{path}?PageSize=1001").status_code == 400
    assert raw_get(rig, f"{path}?StartTime=yesterday").json()["code"] == 21200
    assert raw_get(rig, f"{path}?PageToken=PAnope").status_code == 400


def test_update_status_canceled_cancels_a_ringing_call(rig: Rig) -> None:
    rig.simulator.set_callee(TO, CalleeScript(ring_seconds=100000))  # rings for a long while
    sid = rig.call(timeout=600)
    updated = rig.client.calls(sid).update(status="canceled")
    assert updated.status in ("queued", "ringing", "canceled")
    record = rig.finish(sid)
    assert record.status == "canceled" and record.duration is None
    assert rig.client.calls(sid).fetch().status == "canceled"
    assert rig.app.requests_to("/voice") == []


def test_update_on_a_finished_call_is_21220(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.hangup())
    sid = rig.call()
    rig.finish(sid)
    with pytest.raises(TwilioRestException) as raised:
        rig.client.calls(sid).update(url=rig.app.url("/voice"))
    assert raised.value.code == 21220


def test_update_redirects_a_live_call_with_url_or_twiml(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.pause(length=100000))
    rig.app.say("/next", lambda r: r.say("redirected by update"))
    by_url = rig.call()
    rig.app.wait_for("/voice")
    rig.client.calls(by_url).update(url=rig.app.url("/next"), method="GET")
    record = rig.finish(by_url)
    assert record.heard_text == ["redirected by update"]
    assert rig.app.requests_to("/next")[0].method == "GET"

    by_twiml = rig.call()
    rig.app.wait_for("/voice", count=2)
    update = VoiceResponse()
    update.say("inline update")
    rig.client.calls(by_twiml).update(twiml=str(update))
    assert rig.finish(by_twiml).heard_text == ["inline update"]


def test_update_status_completed_hangs_up_a_live_call(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.pause(length=100000))
    sid = rig.call()
    rig.app.wait_for("/voice")
    rig.client.calls(sid).update(status="completed")
    record = rig.finish(sid)
    assert (record.status, record.end_reason) == ("completed", "api-hangup")
    assert record.duration is not None and record.end_time is not None


def test_chaos_makes_the_next_creates_fail_with_429_then_500(rig: Rig) -> None:
    rig.app.say("/voice", lambda r: r.hangup())
    rig.simulator.chaos.fail_next_creates(1, status=429)
    rig.simulator.chaos.fail_next_creates(1, status=500)
    for status, code in ((429, 20429), (500, 20500)):
        with pytest.raises(TwilioRestException) as raised:
            rig.call()
        assert (raised.value.status, raised.value.code) == (status, code)
    assert rig.simulator.calls == []
    rig.finish(rig.call())
