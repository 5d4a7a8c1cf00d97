"""The Twilio Calls API client: the only place that talks to the Twilio REST API (through the
twilio SDK), and the second half of the safety gate: it dials only with an `Approval` that
the store confirms."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from twilio_caller.errors import InternalError, NotFoundError, TelephonyError
from twilio_caller.safety import Approval
from twilio_caller.settings import Twilio
from twilio_caller.store.ports import SafetyLedger
from twilio_caller.transport.port import Placed, ProviderCall
from twilio_caller.transport.twilio.status import ANSWERED_BY, answered_by

if TYPE_CHECKING:
    from twilio.rest import Client

log = logging.getLogger("twilio_caller.telephony")  # the name operators already filter on
REQUEST_TIMEOUT_SECONDS = 15
CREATE_ATTEMPTS = 3
CLOCK_SKEW_SECONDS = 5
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


@dataclass(frozen=True)
class Credentials:
    account_sid: str
    auth_token: str
    from_number: str
    api_base_url: str

    @classmethod
    def from_settings(cls, twilio: Twilio) -> Credentials:
        return cls(*twilio.account(), twilio.api_base_url)


class Telephony:
    def __init__(
        self,
        credentials: Credentials,
        ledger: SafetyLedger,
        *,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._credentials = credentials
        self._ledger = ledger
        self._client: Client | None = None
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._now = now

    @property
    def auth_token(self) -> str:
        """What Twilio signs its webhook requests with."""
        return self._credentials.auth_token

    def create_call(
        self,
        approval: Approval,
        *,
        url: str,
        status_callback: str,
        ring_timeout: int,
        extra: Mapping[str, Any] | None = None,
    ) -> Placed:
        """Dial. A 429, a 5xx or a lost connection is retried with backoff — but only after
        the account's recent calls show the failed attempt created no call; when it did,
        that call is adopted instead, so a fault never dials twice."""
        self._confirm(approval)
        fields = dict(
            to=approval.to_number, from_=self._credentials.from_number, url=url, method="POST",
            status_callback=status_callback, status_callback_method="POST",
            status_callback_event=STATUS_EVENTS, time_limit=approval.time_limit,
            timeout=ring_timeout, **(extra or {}),
        )
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            started = self._now()
            try:
                call = self._request(lambda client: client.calls.create(**fields))
                return Placed(sid=call.sid, status=call.status)
            except TelephonyError as exc:
                if not exc.retryable or attempt == CREATE_ATTEMPTS:
                    raise
                created = self._created_since(approval.to_number, started)
                if created is not None:
                    log.warning("create failed (%s) but Twilio created %s; adopting it", exc.message, created.sid)
                    return created
                log.warning("create failed (%s); retry %d of %d", exc.message, attempt, CREATE_ATTEMPTS - 1)
                self._sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def update_call(self, sid: str, **fields: Any) -> str:
        """Redirect (twiml=/url=) or end (status="completed"/"canceled") a live call."""
        return str(self._request(lambda client: client.calls(sid).update(**fields)).status)

    def recent_calls(self, limit: int = 20) -> list[str]:
        """The SIDs of the account's latest calls (also proves the credentials work)."""
        return [call.sid for call in self._request(lambda client: client.calls.list(limit=limit))]

    def fetch_call(self, sid: str) -> ProviderCall:
        """The call as Twilio knows it now; `answered_by` in the result's words (machine, not
        machine_end_beep), None when detection has not decided or Twilio sent a word it does not document."""
        call = self._request(lambda client: client.calls(sid).fetch())
        raw = call.answered_by
        return ProviderCall(status=call.status, duration=call.duration,
                            answered_by=answered_by(raw) if raw in ANSWERED_BY else None)

    def _confirm(self, approval: Approval) -> None:
        """Dial only for a call that safety approved and that was not dialled before."""
        if not isinstance(approval, Approval):
            raise InternalError("refusing to dial: no approved safety decision for this call")
        if not self._ledger.approval_holds(approval.decision_id, approval.call_id, approval.to_number):
            raise InternalError("refusing to dial: no approved safety decision for this call")

    def _created_since(self, number: str, started: datetime) -> Placed | None:
        """A call to `number` from our number that Twilio created at or after `started`."""
        try:
            recent = self._request(lambda client: client.calls.list(
                to=number, from_=self._credentials.from_number, limit=20))
        except TelephonyError as exc:
            raise TelephonyError(
                f"{exc.message}; and the recent calls could not be checked, so the call is not "
                "retried (it might exist): look at call_status or the Twilio console"
            ) from exc
        skew = timedelta(seconds=CLOCK_SKEW_SECONDS)
        for call in recent:
            if call.date_created is not None and call.date_created >= started - skew:
                return Placed(sid=call.sid, status=call.status)
        return None

    def _request(self, action: Any) -> Any:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            return action(self._sdk())
        except TwilioRestException as exc:
            if exc.status == 404:
                raise NotFoundError(f"Twilio does not know this call (error {exc.code})") from exc
            raise TelephonyError(
                f"Twilio refused the request (error {exc.code}, HTTP {exc.status}): {exc.msg}",
                retryable=exc.status == 429 or exc.status >= 500,
            ) from exc
        except TwilioException as exc:
            raise _page_error(exc) from exc
        except OSError as exc:  # requests' errors are OSErrors
            raise TelephonyError(f"cannot reach Twilio: {type(exc).__name__}", retryable=True) from exc

    def _sdk(self) -> Client:
        if self._client is None:
            from twilio.http.http_client import TwilioHttpClient
            from twilio.rest import Client

            logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
            client = Client(
                self._credentials.account_sid,
                self._credentials.auth_token,
                http_client=TwilioHttpClient(timeout=REQUEST_TIMEOUT_SECONDS),
                environment={"TWILIO_CALLER": "1"},  # never os.environ's TWILIO_REGION/EDGE
            )
            client.api.base_url = self._credentials.api_base_url.rstrip("/")
            self._client = client
        return self._client


def _page_error(exc: Exception) -> TelephonyError:
    """The SDK's list calls raise a bare TwilioException("Unable to fetch page", response):
    recover Twilio's status and code from the response it carries."""
    import json

    response: Any = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    if status is None:
        return TelephonyError(f"cannot reach Twilio: {exc}", retryable=True)
    try:
        body = json.loads(response.text)
    except (ValueError, AttributeError):
        body = {}
    return TelephonyError(
        f"Twilio refused the request (error {body.get('code', 'unknown')}, HTTP {status}): "
        f"{body.get('message', 'no details')}",
        retryable=status == 429 or status >= 500,
    )
