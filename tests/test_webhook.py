"""Hostile input at the Twilio-facing routes: only signed requests for a known call and its
token get through, over the public URL Twilio used; bad bodies get a 4xx, never a 500;
replays change nothing; callee speech never becomes markup."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from conftest import LiveServer
from twilio_caller.server.runfile import read_run_file

PUBLIC = "https://calls.example.com"


@pytest.fixture
def public_server(home: Path):
    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=30)
    with (home / "config.yaml").open("a") as config:
        config.write(f"public_url: {PUBLIC}\n")
    server.thread.start()
    yield server
    server.thread.stop()
    server.runtime.close()


@pytest.fixture
def steady_server(home: Path):
    """A server whose kept-open calls outlast the test: no agent steers them, and on a busy
    machine the requests of a test may take longer than the usual 1.5 s unsteered limit, which
    would end the call under the test (its closing `hangup` then finds it ended)."""
    server = LiveServer(home, time_scale=50, hold=0.3, unsteered=600)
    server.thread.start()
    yield server
    server.thread.stop()
    server.runtime.close()


class Hook:
    """A live keep_open call's webhook, reachable on loopback, signed as Twilio would."""

    def __init__(self, server: LiveServer, placed: dict, public: str | None) -> None:
        self.server, self.placed = server, placed
        self.token = server.runtime.store.query("SELECT token FROM calls WHERE id = ?", (placed["call_id"],))[0][0]
        self.local = f"http://127.0.0.1:{read_run_file(server.runtime.home)['webhook_port']}"
        self.public = public or self.local
        self.validator = RequestValidator(server.simulator.auth_token)

    def path(self, route: str, call_id: str | None = None, token: str | None = None) -> str:
        return f"/twilio/{call_id or self.placed['call_id']}/{token or self.token}/{route}"

    def form(self, **extra: str) -> dict[str, str]:
        return {"CallSid": self.placed["twilio_sid"], "CallStatus": "in-progress", **extra}

    def post(self, path: str, form: dict[str, str] | None = None, *, signed_url: str | None = None,
             signature: str | None = None, **kwargs) -> httpx.Response:
        form = self.form() if form is None else form
        if signature is None:
            signature = self.validator.compute_signature(signed_url or self.public + path, form)
        headers = {"X-Twilio-Signature": signature, **kwargs.pop("headers", {})}
        if "content" in kwargs:
            return httpx.post(self.local + path, headers=headers, trust_env=False, **kwargs)
        return httpx.post(self.local + path, data=form, headers=headers, trust_env=False, **kwargs)

    def transcript(self) -> list[dict]:
        return self.server.tool("call_status", call_id=self.placed["call_id"])["transcript"]


def keep_open(server: LiveServer, name: str = "Contact1", replies: list | None = None) -> dict:
    server.script(name, replies=replies or [{"say": "Hi"}])
    return server.tool("call", to=name, message="Hello", keep_open=True)


def test_signatures_are_checked_over_the_public_url(public_server) -> None:
    hook = Hook(public_server, keep_open(public_server), PUBLIC)
    path = hook.path("hold") + "?n=1"
    before = hook.transcript()
    assert hook.post(path).status_code == 200
    assert hook.post(path, signed_url=PUBLIC.replace("https://calls.example.com", "https://calls.example.com:443") + path).status_code == 200
    assert hook.post(path, signed_url=hook.local + path).status_code == 403  # the URL the app sees
    assert hook.post(path, signed_url="http://calls.example.com" + path).status_code == 403  # scheme
    assert hook.post(path, signed_url=PUBLIC + path + "?x=1").status_code == 403  # query
    assert hook.post(path, signature="").status_code == 403
    assert hook.post(path, signature="Zm9yZ2Vk").status_code == 403
    forged = RequestValidator("not-the-token").compute_signature(PUBLIC + path, hook.form())
    assert hook.post(path, signature=forged).status_code == 403
    tampered = hook.validator.compute_signature(PUBLIC + path, hook.form())
    assert hook.post(path, hook.form(CallStatus="completed"), signature=tampered).status_code == 403
    assert hook.transcript() == before
    public_server.tool("hangup", call_id=hook.placed["call_id"])


def test_unknown_calls_and_tokens_are_404_and_record_nothing(steady_server) -> None:
    hook = Hook(steady_server, keep_open(steady_server), None)
    before = hook.transcript()
    for path in (hook.path("gather", token="wrong-token") + "?n=1",
                 hook.path("status", call_id="call_unknown"),
                 hook.path("nope")):
        assert hook.post(path, hook.form(SpeechResult="injected")).status_code == 404
    assert hook.transcript() == before
    steady_server.tool("hangup", call_id=hook.placed["call_id"])


def test_bad_bodies_get_4xx_never_500(steady_server) -> None:
    hook = Hook(steady_server, keep_open(steady_server), None)
    path = hook.path("hold") + "?n=1"
    assert hook.post(path, hook.form(Junk="x" * (70 * 1024))).status_code == 413
    assert hook.post(path, hook.form(SpeechResult="y" * (9 * 1024))).status_code == 413
    assert hook.post(path, content=b'{"CallSid": "x"}',
                     headers={"Content-Type": "application/json"}).status_code == 415
    bad_utf8 = b"CallSid=%FF%FE&CallStatus=in-progress"
    assert hook.post(path, content=bad_utf8,
                     headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    too_many = "&".join(f"f{n}=1" for n in range(500)).encode()
    assert hook.post(path, content=too_many,
                     headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    assert hook.post(hook.path("gather") + "?n=abc").status_code == 400
    assert hook.post(hook.path("hold")).status_code == 400  # a hold URL carries its sequence
    assert hook.post(hook.path("status"), {"CallSid": hook.placed["twilio_sid"]}).status_code == 400
    steady_server.tool("hangup", call_id=hook.placed["call_id"])


def test_a_replayed_gather_gets_the_same_twiml_and_one_turn(live_server) -> None:
    placed = live_server.tool("call", to="Contact2", message="Hello", interactive=True, wait=False)
    live_server.tool("wait", call_id=placed["call_id"], until="end", timeout_seconds=20)
    hook = Hook(live_server, placed, None)
    # the call's first Gather was n=1; Twilio retries it with an idempotency token
    form = hook.form(SpeechResult="Okay, thanks", Confidence="0.9")
    first = hook.post(hook.path("gather") + "?n=1", form, headers={"I-Twilio-Idempotency-Token": "abc"})
    second = hook.post(hook.path("gather") + "?n=1", form)
    assert first.status_code == second.status_code == 200
    assert first.text == second.text
    callee_turns = [t for t in hook.transcript() if t["speaker"] == "callee"]
    assert [t["text"] for t in callee_turns] == ["Okay, thanks"]


def test_callee_markup_stays_text(steady_server) -> None:
    injected = '</Say><Dial>+15555550100</Dial><Say>'
    placed = keep_open(steady_server, "Contact3", [{"say": injected}, {"say": "ok"}])
    assert placed["reply"] == {"text": injected, "confidence": 0.9, "untrusted": True}
    spoken = steady_server.tool("say", call_id=placed["call_id"], message=f"You said: {injected}")
    assert spoken["reply"]["text"] == "ok"
    record = steady_server.simulator.call(placed["twilio_sid"])
    assert f"You said: {injected}" in [u.text for u in record.heard]
    assert not record.error_codes
    steady_server.tool("hangup", call_id=placed["call_id"])
