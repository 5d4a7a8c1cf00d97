"""The Twilio TwiML/Gather transport: the port's commands as TwiML, Twilio's webhook requests
as the port's events, and a live call driven through the Calls API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twilio.request_validator import RequestValidator

from twilio_caller.call_status import UNANSWERED
from twilio_caller.transport.port import CallLine, Command, EndCall, Event, Placed, ProviderCall, Reconnect, SendDigits
from twilio_caller.transport.twilio import requests, twiml
from twilio_caller.transport.twilio.calls import Telephony
from twilio_caller.transport.twilio.relay_socket import connect_twiml
from twilio_caller.transport.twilio.routes import WebhookUrls

if TYPE_CHECKING:
    from twilio_caller.safety import Approval


class TwilioTransport:
    """The first `CallTransport` (transport/port.py)."""

    def __init__(self, calls: Telephony, urls: WebhookUrls) -> None:
        self.calls = calls
        self.urls = urls
        self._validator = RequestValidator(calls.auth_token)

    # -- the webhook side ---------------------------------------------------------------------

    def render(self, line: CallLine, command: Command) -> str:
        """A command as TwiML: a reconnect is a new `<Connect><ConversationRelay>` to this
        server's socket, whose signed URL says where the call goes on."""
        if isinstance(command, Reconnect):
            return connect_twiml(self.urls, line, resume=command.resume, reask=command.reask)
        return twiml.render(command, line.speech, lambda route, n: self.urls.numbered(line, route, n))

    def verify(self, url: str, params: Mapping[str, str], signature: str) -> bool:
        return requests.signed(self._validator, url, params, signature)

    def parse_event(self, line: CallLine, kind: str, query: Mapping[str, str],
                    params: Mapping[str, str]) -> Event | None:
        return requests.parse_event(line, kind, query, params)

    # -- the Calls API side -------------------------------------------------------------------

    def initiate(self, approval: Approval, line: CallLine, *, ring_timeout: int,
                 send_digits: str | None, detection: str = "sync") -> Placed:
        """Dial; with digits to send on answer (SendDigits), Twilio turns answering-machine
        detection off, else per `detection` (voicemail.detection)."""
        return self.calls.create_call(
            approval, url=self.urls.url(line, "voice"), status_callback=self.urls.url(line, "status"),
            ring_timeout=ring_timeout, extra=self.dial_options(line, send_digits, detection),
        )

    def dial_options(self, line: CallLine, send_digits: str | None, detection: str) -> dict[str, str]:
        """The Calls API fields for answering-machine detection: `sync` finds a machine after
        its beep before the first TwiML is fetched (DetectMessageEnd); `async` fetches it at
        once and posts the result to the `amd` route later (AsyncAmd); `off` detects nothing."""
        if send_digits:
            return {"send_digits": send_digits}
        if detection == "off":
            return {}
        if detection == "sync":
            return {"machine_detection": "DetectMessageEnd"}
        return {"machine_detection": "DetectMessageEnd", "async_amd": "true",
                "async_amd_status_callback": self.urls.url(line, "amd"),
                "async_amd_status_callback_method": "POST"}

    def resume_at(self, sid: str, line: CallLine, resume: int) -> None:
        """Move a live call now, whatever it is doing, to ask for `Ready(resume)`."""
        self.calls.update_call(sid, url=self.urls.numbered(line, "hold", resume), method="POST")

    def send_digits(self, sid: str, line: CallLine, digits: str, resume: int) -> None:
        """Press keys now, outside a webhook request; the call then asks `hold?n=resume`."""
        self.calls.update_call(sid, twiml=self.render(line, SendDigits(digits, resume)))

    def hang_up(self, sid: str, status: str, line: CallLine | None = None, text: str | None = None) -> None:
        """End a call in `status`: cancel one not answered yet, else say `text` (if any) and
        hang up."""
        fields: dict[str, Any]
        if status in UNANSWERED:
            fields = {"status": "canceled" if status != "pending" else "completed"}
        elif text and line is not None:
            fields = {"twiml": self.render(line, EndCall((text,)))}
        else:
            fields = {"status": "completed"}
        self.calls.update_call(sid, **fields)

    def reattach(self, sid: str, line: CallLine, *, resume: int | None = None, reask: int | None = None,
                 goodbye: str | None = None) -> None:
        """Point a live call another (stopped) server ran at this one: say `goodbye` and hang
        up, or come back as `Ready(resume)` (a relay call: over a new socket to this server), or as Gather `reask`'s request with nothing heard
        (the redirect cut that Gather: the question is asked again), or — not answered yet —
        ask for the first answer."""
        fields: dict[str, Any]
        if goodbye is not None:
            fields = {"twiml": self.render(line, EndCall((goodbye,)))}
        elif line.engine == "relay" and (resume is not None or reask is not None):
            fields = {"twiml": connect_twiml(self.urls, line, resume=resume, reask=reask)}
        elif reask is not None:
            fields = {"url": self.urls.numbered(line, "gather", reask), "method": "POST"}
        elif resume is not None:
            fields = {"url": self.urls.numbered(line, "hold", resume), "method": "POST"}
        else:
            fields = {"url": self.urls.url(line, "voice"), "method": "POST"}
        fields.update(status_callback=self.urls.url(line, "status"), status_callback_method="POST")
        self.calls.update_call(sid, **fields)

    def fetch_status(self, sid: str) -> ProviderCall:
        return self.calls.fetch_call(sid)
