"""Switches that make the simulator misbehave the ways Twilio sometimes does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from twilio_caller.simulator.errors import INTERNAL_SERVER_ERROR, TOO_MANY_REQUESTS, ApiError


WebhookMatch = Callable[[str, Mapping[str, str]], bool]  # (url, params) → this one?


@dataclass(frozen=True)
class _Failure:
    status: int
    code: int
    message: str


_FAILURES = {
    429: _Failure(429, TOO_MANY_REQUESTS, "Too Many Requests"),
    500: _Failure(500, INTERNAL_SERVER_ERROR, "Internal Server Error"),
}


class Chaos:
    """Thread-safe: tests flip switches from their own thread while the simulator runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._create_failures: list[_Failure] = []
        self._failures_after_create: list[_Failure] = []
        self._stalls = 0
        self._webhook_hooks: list[tuple[WebhookMatch, Callable[[], None], bool]] = []
        self.duplicate_status_callbacks = False
        self.reorder_status_callbacks = False
        self.ignore_time_limit = False  # a Twilio that lets calls run past TimeLimit
        self._balanced: dict[str, tuple[list[str], int]] = {}  # public base → (instances, next turn)
        self.fetch_gate: threading.Event | None = None  # set: Calls API fetches answer again
        # Webhooks signed with another auth token: the primary token changed in the Console
        # while the application checks with the one it has (the secondary still works for the
        # REST API, but Twilio signs requests with the primary): every request fails its check.
        self.signing_token: str | None = None

    def fail_next_creates(self, count: int, status: int = 429) -> None:
        """The next `count` create requests answer `status` (429 or 500) and place no call."""
        if status not in _FAILURES:
            raise ValueError(f"status must be one of {sorted(_FAILURES)}")
        with self._lock:
            self._create_failures.extend([_FAILURES[status]] * count)

    def fail_after_next_creates(self, count: int, status: int = 500) -> None:
        """The next `count` creates place the call, then answer `status` anyway — the fault
        (a timeout or 5xx after the fact) that makes a blind retry dial twice."""
        if status not in _FAILURES:
            raise ValueError(f"status must be one of {sorted(_FAILURES)}")
        with self._lock:
            self._failures_after_create.extend([_FAILURES[status]] * count)

    def stall_next_webhooks(self, count: int) -> None:
        """The next `count` TwiML requests are sent, but their answers arrive after the
        HTTP limit, so Twilio gives up with 11200."""
        with self._lock:
            self._stalls += count

    def on_next_webhook(self, matches: WebhookMatch, hook: Callable[[], None], *,
                        in_flight: bool = True) -> None:
        """Run `hook()` (in a worker thread) once, for the first request toward the
        application for which `matches(url, params)` holds: while that request is in flight —
        sent, its answer not yet read (the answer is read once the hook returns) — or, with
        `in_flight=False`, just before it is sent. A test kills the application there. Like
        Twilio, the simulator does not retry a request that then fails."""
        with self._lock:
            self._webhook_hooks.append((matches, hook, in_flight))

    def hold_fetches(self, until: threading.Event) -> None:
        """Calls API fetches (GET of one call) wait until `until` is set (at most 30 s) before
        they are answered: a restarted server's reconciliation, which fetches each call it
        takes back, then comes after what the test lets happen first."""
        with self._lock:
            self.fetch_gate = until

    def round_robin(self, public_base_url: str, base_urls: Sequence[str]) -> None:
        """Deliver the webhook requests toward `public_base_url` to `base_urls` in turn (one
        base URL per server instance, as a balancer would): each request to the next instance,
        whatever call it belongs to. An instance that refuses the connection, or drops it
        before answering (it died), is passed over for the next, as a balancer set to retry does
        (nginx `proxy_next_upstream error non_idempotent`, HAProxy `retry-on conn-failure
        empty-response`): the application's answers are replay-safe by request key. Signatures
        stay computed over the public URL."""
        if not base_urls:
            raise ValueError("round_robin needs at least one base URL")
        with self._lock:
            self._balanced[public_base_url.rstrip("/")] = ([url.rstrip("/") for url in base_urls], 0)

    def balance(self, url: str) -> list[str]:
        """Where a request toward `url` goes, the instance in turn first, then the others in
        order (tried when one refuses); [] when `url` is not balanced."""
        with self._lock:
            for public, (instances, turn) in self._balanced.items():
                if url == public or url.startswith(public + "/"):
                    self._balanced[public] = (instances, turn + 1)
                    start = turn % len(instances)
                    return [base + url[len(public):] for base in instances[start:] + instances[:start]]
        return []

    def reset(self) -> None:
        with self._lock:
            self._create_failures.clear()
            self._failures_after_create.clear()
            self._stalls = 0
            self._webhook_hooks.clear()
            self._balanced.clear()
            self.fetch_gate = None
            self.duplicate_status_callbacks = False
            self.reorder_status_callbacks = False
            self.ignore_time_limit = False
            self.signing_token = None

    def take_create_failure(self) -> ApiError | None:
        with self._lock:
            if not self._create_failures:
                return None
            failure = self._create_failures.pop(0)
        return ApiError(failure.status, failure.code, failure.message)

    def take_failure_after_create(self) -> ApiError | None:
        with self._lock:
            if not self._failures_after_create:
                return None
            failure = self._failures_after_create.pop(0)
        return ApiError(failure.status, failure.code, failure.message)

    def take_stall(self) -> bool:
        with self._lock:
            if self._stalls == 0:
                return False
            self._stalls -= 1
            return True

    def take_webhook_hook(self, url: str, params: Mapping[str, str]) -> tuple[Callable[[], None], bool] | None:
        """The hook for this request and whether it runs while the request is in flight."""
        with self._lock:
            for index, (matches, hook, in_flight) in enumerate(self._webhook_hooks):
                if matches(url, params):
                    del self._webhook_hooks[index]
                    return hook, in_flight
        return None
