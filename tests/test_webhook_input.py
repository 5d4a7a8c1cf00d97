"""The webhook's limits pinned at their edges: the body at exactly 64 KB, speech cut at 2000
characters, a signature that must cover the parameters, the CallSid of the call, and
replays that answer the same and change nothing."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from test_webhook import Hook, keep_open
# the limits as documented (docs/design-notes.md), not imported: a test must not follow a
# changed constant
MAX_BODY_BYTES = 64 * 1024
MAX_FIELD_CHARS = 8 * 1024
MAX_FIELDS = 200
MAX_SPEECH_CHARS = 2000
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def padded(hook: Hook, size: int) -> dict[str, str]:
    """The call's form plus padding fields (each under the field limit) so that the encoded
    body is exactly `size` bytes."""
    form = hook.form()
    fields = 0
    while True:
        missing = size - len(urlencode(form).encode())
        if missing <= 0:
            assert missing == 0
            return form
        name = f"Pad{fields}"
        overhead = len(f"&{name}=")
        form[name] = "x" * min(MAX_FIELD_CHARS, missing - overhead)
        fields += 1


def test_the_body_limit_is_exactly_64_kb(live_server) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    path = hook.path("hold") + "?n=1"
    at_limit, over = padded(hook, MAX_BODY_BYTES), padded(hook, MAX_BODY_BYTES + 1)
    assert len(urlencode(at_limit)) == 65536
    assert hook.post(path, at_limit).status_code == 200
    refused = hook.post(path, over)
    assert (refused.status_code, refused.headers.get("connection")) == (413, "close")  # the rest is not read
    # without a Content-Length (chunked), the stream is cut at the same byte
    def chunks(body: bytes):
        for start in range(0, len(body), 4096):
            yield body[start:start + 4096]

    signature = hook.validator.compute_signature(hook.public + path, over)
    refused = hook.post(path, signature=signature, content=chunks(urlencode(over).encode()), headers=FORM)
    assert (refused.status_code, refused.headers.get("connection")) == (413, "close")
    signature = hook.validator.compute_signature(hook.public + path, at_limit)
    assert hook.post(path, signature=signature, content=chunks(urlencode(at_limit).encode()),
                     headers=FORM).status_code == 200
    live_server.tool("hangup", call_id=hook.placed["call_id"])


def test_a_field_may_be_8_kb_and_no_more(live_server) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    path = hook.path("hold") + "?n=1"
    assert hook.post(path, hook.form(Note="n" * MAX_FIELD_CHARS)).status_code == 200
    refused = hook.post(path, hook.form(Note="n" * (MAX_FIELD_CHARS + 1)))
    assert (refused.status_code, refused.headers.get("connection")) == (413, "close")
    live_server.tool("hangup", call_id=hook.placed["call_id"])


def test_a_form_may_have_200_fields_and_no_more(live_server) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    path = hook.path("hold") + "?n=1"
    base = hook.form()
    full = {**base, **{f"F{n}": "1" for n in range(MAX_FIELDS - len(base))}}
    assert len(full) == 200
    assert hook.post(path, full).status_code == 200
    assert hook.post(path, {**full, "Extra": "1"}).status_code == 400
    live_server.tool("hangup", call_id=hook.placed["call_id"])


def test_speech_is_cut_at_2000_characters(live_server) -> None:
    words = "".join(f"w{n:04d} " for n in range(700))  # 4200 characters
    live_server.script("Contact11", replies=[{"say": words}])
    result = live_server.tool("call", to="Contact11", message="Tell me everything", interactive=True)
    assert result["reply"]["text"] == " ".join(words[:MAX_SPEECH_CHARS].split())


def test_a_signature_over_the_url_alone_is_refused(live_server) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    before = hook.transcript()
    path = hook.path("status")
    url_only = hook.validator.compute_signature(hook.public + path, {})
    assert hook.post(path, hook.form(CallStatus="completed"), signature=url_only).status_code == 403
    assert live_server.tool("call_status", call_id=hook.placed["call_id"])["status"] == "in-progress"
    assert hook.transcript() == before
    live_server.tool("hangup", call_id=hook.placed["call_id"])


def test_another_calls_sid_is_refused_and_changes_nothing(live_server) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    other = live_server.tool("call", to="Contact2", message="Other", keep_open=True)
    before = hook.transcript()
    form = hook.form(CallSid=other["twilio_sid"], CallStatus="completed", SequenceNumber="9")
    assert hook.post(hook.path("status"), form).status_code == 404
    assert hook.post(hook.path("hold") + "?n=1", form).status_code == 404
    status = live_server.tool("call_status", call_id=hook.placed["call_id"])
    assert status["status"] == "in-progress" and status["ended"] is False
    assert hook.transcript() == before
    for placed in (hook.placed, other):
        live_server.tool("hangup", call_id=placed["call_id"])


def test_a_get_for_the_voice_document_needs_a_signature_over_its_query(live_server) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    path = hook.path("voice") + "?AnsweredBy=human&CallSid=" + hook.placed["twilio_sid"]
    import httpx

    good = hook.validator.compute_signature(hook.public + path, {})
    bad = hook.validator.compute_signature(hook.public + hook.path("voice"), {})
    assert httpx.get(hook.local + path, headers={"X-Twilio-Signature": bad}, trust_env=False).status_code == 403
    answer = httpx.get(hook.local + path, headers={"X-Twilio-Signature": good}, trust_env=False)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    live_server.tool("hangup", call_id=hook.placed["call_id"])


@pytest.mark.parametrize("route", ["voice", "hold"])
def test_answers_are_twiml(live_server, route: str) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    answer = hook.post(hook.path(route) + ("?n=1" if route == "hold" else ""))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert answer.text.startswith("<?xml") and "<Response>" in answer.text
    live_server.tool("hangup", call_id=hook.placed["call_id"])


def test_a_status_callback_answers_204_and_a_duplicate_changes_nothing(live_server) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    form = hook.form(CallStatus="in-progress", SequenceNumber="1")
    events = "SELECT COUNT(*) FROM events WHERE call_id = ?"
    count = live_server.runtime.store.query(events, (hook.placed["call_id"],))[0][0]
    first = hook.post(hook.path("status"), form)
    second = hook.post(hook.path("status"), form)
    assert (first.status_code, second.status_code) == (204, 204)
    assert live_server.runtime.store.query(events, (hook.placed["call_id"],))[0][0] <= count + 1
    live_server.tool("hangup", call_id=hook.placed["call_id"])


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_answered_by_is_read_from_the_form_or_the_query(live_server, method: str) -> None:
    import httpx

    live_server.script("Contact12", ring_seconds=3000)  # still ringing: the voice document is not fetched yet
    placed = live_server.tool("call", to="Contact12", message="Your table is ready", wait=False)
    hook = Hook(live_server, placed, None)
    if method == "POST":
        answer = hook.post(hook.path("voice"), hook.form(AnsweredBy="machine_end_beep"))
    else:
        path = hook.path("voice") + f"?CallSid={placed['twilio_sid']}&AnsweredBy=machine_end_beep"
        signature = hook.validator.compute_signature(hook.public + path, {})
        answer = httpx.get(hook.local + path, headers={"X-Twilio-Signature": signature}, trust_env=False)
    assert answer.status_code == 200
    assert "I'm calling with a message: Your table is ready" in answer.text  # the voicemail, not the greeting
    assert live_server.tool("call_status", call_id=placed["call_id"])["answered_by"] == "machine"
    live_server.tool("hangup", call_id=placed["call_id"])


def test_blank_values_are_signed_and_malformed_bodies_are_refused(live_server) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    path = hook.path("hold") + "?n=1"
    assert hook.post(path, hook.form(Digits="", SpeechResult="")).status_code == 200  # Twilio signs blanks too
    body = urlencode(hook.form()) + "&no-equals-sign"
    signature = hook.validator.compute_signature(hook.public + path, hook.form())
    assert hook.post(path, signature=signature, content=body.encode(), headers=FORM).status_code == 400
    live_server.tool("hangup", call_id=hook.placed["call_id"])


@pytest.mark.parametrize(("confidence", "reported"), [(0.0, 0.0), (1.0, 1.0), (1.5, None)])
def test_confidence_is_kept_between_0_and_1(live_server, confidence: float, reported: float | None) -> None:
    from twilio_caller.simulator import CalleeScript, Speech

    # the script parser refuses 1.5, as Twilio never sends it; a hand-built script may
    live_server.simulator.set_callee("+13125550013", CalleeScript(replies=(Speech("Yes", confidence),)))
    result = live_server.tool("call", to="Contact13", message="Are you in?", interactive=True)
    assert result["reply"] == {"text": "Yes", "confidence": reported, "untrusted": True}


def test_cached_audio_is_served_beside_the_webhook(live_server) -> None:
    import httpx

    from twilio_caller.server.runfile import read_run_file

    audio = live_server.runtime.home / "audio"
    audio.mkdir(mode=0o700, exist_ok=True)
    token = "t" * 43
    (audio / "serving-token").write_text(token)
    name = "ab" * 32 + ".mp3"
    (audio / name).write_bytes(b"ID3 not really audio")
    local = f"http://127.0.0.1:{read_run_file(live_server.runtime.home)['webhook_port']}"
    served = httpx.get(f"{local}/audio/{token}/{name}", trust_env=False)
    assert (served.status_code, served.content) == (200, b"ID3 not really audio")
    assert httpx.get(f"{local}/audio/{'x' * 43}/{name}", trust_env=False).status_code == 404


def test_the_ping_route_needs_no_signature(live_server) -> None:
    import httpx

    from twilio_caller.server.runfile import read_run_file

    local = f"http://127.0.0.1:{read_run_file(live_server.runtime.home)['webhook_port']}"
    answer = httpx.get(f"{local}/twilio/ping", trust_env=False)
    assert (answer.status_code, answer.text) == (200, "twilio-caller")
    assert answer.headers["content-type"].startswith("text/plain")
