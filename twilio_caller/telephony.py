"""The only place that talks to the Twilio REST API (through the twilio SDK), and the
second half of the safety gate: it dials only with an `Approval` that the store confirms."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twilio_caller.config import Config
from twilio_caller.errors import ConfigError, InternalError, NotFoundError, TelephonyError
from twilio_caller.safety import Approval
from twilio_caller.store import Store

if TYPE_CHECKING:
    from twilio.rest import Client

REQUEST_TIMEOUT_SECONDS = 15
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


@dataclass(frozen=True)
class Credentials:
    account_sid: str
    auth_token: str
    from_number: str
    api_base_url: str

    @classmethod
    def from_config(cls, config: Config) -> Credentials:
        values = {key: config.get(f"twilio.{key}") for key in
                  ("account_sid", "auth_token", "from_number", "api_base_url")}
        missing = [variable for key, variable in (
            ("account_sid", "TWILIO_ACCOUNT_SID"), ("auth_token", "TWILIO_AUTH_TOKEN"),
            ("from_number", "TWILIO_FROM_NUMBER"),
        ) if not values[key]]
        if missing:
            raise ConfigError(
                f"Twilio is not set up: set {', '.join(missing)} in the environment "
                "(or twilio.* in config.yaml), or try it offline with --simulate"
            )
        return cls(**values)


@dataclass(frozen=True)
class PlacedCall:
    sid: str
    status: str


class Telephony:
    def __init__(self, credentials: Credentials, store: Store) -> None:
        self._credentials = credentials
        self._store = store
        self._client: Client | None = None

    @property
    def from_number(self) -> str:
        return self._credentials.from_number

    def create_call(
        self,
        approval: Approval,
        *,
        url: str,
        status_callback: str,
        ring_timeout: int,
        extra: Mapping[str, Any] | None = None,
    ) -> PlacedCall:
        self._confirm(approval)
        call = self._request(
            lambda client: client.calls.create(
                to=approval.to_number,
                from_=self._credentials.from_number,
                url=url,
                method="POST",
                status_callback=status_callback,
                status_callback_method="POST",
                status_callback_event=STATUS_EVENTS,
                time_limit=approval.time_limit,
                timeout=ring_timeout,
                **(extra or {}),
            )
        )
        return PlacedCall(sid=call.sid, status=call.status)

    def update_call(self, sid: str, **fields: Any) -> str:
        """Redirect (twiml=/url=) or end (status="completed"/"canceled") a live call."""
        return self._request(lambda client: client.calls(sid).update(**fields)).status

    def fetch_call(self, sid: str) -> dict[str, Any]:
        call = self._request(lambda client: client.calls(sid).fetch())
        return {"status": call.status, "duration": call.duration, "answered_by": call.answered_by}

    def _confirm(self, approval: Approval) -> None:
        """Dial only for a call that safety approved and that was not dialled before."""
        if not isinstance(approval, Approval):
            raise InternalError("refusing to dial: no approved safety decision for this call")
        rows = self._store.query(
            "SELECT d.allowed, d.to_number, c.twilio_sid FROM safety_decisions d"
            " JOIN calls c ON c.id = d.call_id WHERE d.id = ? AND d.call_id = ?",
            (approval.decision_id, approval.call_id),
        )
        if (
            not rows
            or not rows[0]["allowed"]
            or rows[0]["to_number"] != approval.to_number
            or rows[0]["twilio_sid"] is not None
        ):
            raise InternalError("refusing to dial: no approved safety decision for this call")

    def _request(self, action: Any) -> Any:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            return action(self._sdk())
        except TwilioRestException as exc:
            if exc.status == 404:
                raise NotFoundError(f"Twilio does not know this call (error {exc.code})") from exc
            raise TelephonyError(
                f"Twilio refused the request (error {exc.code}, HTTP {exc.status}): {exc.msg}"
            ) from exc
        except (TwilioException, OSError) as exc:  # requests' errors are OSErrors
            raise TelephonyError(f"cannot reach Twilio: {type(exc).__name__}") from exc

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
