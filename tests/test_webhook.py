"""The Twilio-facing routes accept only signed requests for a known call and its token."""

from __future__ import annotations

import httpx
from twilio.request_validator import RequestValidator

from twilio_caller.server.runner import read_run_file


def test_unsigned_forged_and_unknown_requests_are_turned_away(live_server) -> None:
    live_server.script("Contact1", replies=[{"say": "Hi"}])
    placed = live_server.tool("call", to="Contact1", message="Hello", keep_open=True)
    token = live_server.runtime.store.query("SELECT token FROM calls WHERE id = ?", (placed["call_id"],))[0][0]
    base = f"http://127.0.0.1:{read_run_file(live_server.runtime.home)['webhook_port']}"
    url = f"{base}/twilio/{placed['call_id']}/{token}/hold"
    form = {"CallSid": placed["twilio_sid"], "CallStatus": "in-progress"}
    turns_before = live_server.tool("call_status", call_id=placed["call_id"])["transcript"]

    def post(target: str, signature: str | None) -> int:
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        return httpx.post(target, data=form, headers=headers, trust_env=False).status_code

    assert post(url, None) == 403
    assert post(url, "forged=") == 403
    wrong_key = RequestValidator("not-the-auth-token").compute_signature(url, form)
    assert post(url, wrong_key) == 403
    assert post(f"{base}/twilio/{placed['call_id']}/wrong-token/hold", None) == 404
    assert post(f"{base}/twilio/call_unknown/{token}/hold", None) == 404
    good = RequestValidator(live_server.simulator.auth_token).compute_signature(url, form)
    assert post(url, good) == 200
    assert live_server.tool("call_status", call_id=placed["call_id"])["transcript"] == turns_before
    live_server.tool("hangup", call_id=placed["call_id"])
