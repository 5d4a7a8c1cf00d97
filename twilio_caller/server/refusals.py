"""A call whose request the webhook refused: Twilio ends it, and may not tell us.

When the webhook answers one of a call's requests with an error (>= 400: a signature that does
not verify, a form it cannot read, a store that cannot be read), Twilio gives up on the call
with its application error (11200) — and the status callback that would report the end goes to
the same webhook, which may refuse it too (an auth token that changed in the Console refuses
every request). The tools waiting on the call would then wait out their whole wait. So the
server asks Twilio instead: after 1, 2, 4, 8 and 16 s, one lookup at a time, until the call is
over (`Dialer.look_up` closes a call Twilio reports over, and its waiting tools wake).

Only a request that named a call this server runs, with the call's token, starts a watch: a
request without the token is not Twilio's, and makes no Calls-API request."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from twilio_caller.sessions import CallSession, Registry

log = logging.getLogger("twilio_caller.webhook")
LOOKUPS_AFTER = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds before each lookup, from the one before


class RefusalWatch:
    """Watches a call at Twilio after one of its requests was refused, one watch per call."""

    def __init__(self, registry: Registry, look_up: Callable[[str], Awaitable[bool]],
                 spawn: Callable[[Coroutine[Any, Any, None]], None],
                 delays: Sequence[float] = LOOKUPS_AFTER) -> None:
        self._registry = registry
        self._look_up = look_up  # True once the call is over (closed here when Twilio says so)
        self._spawn = spawn
        self._delays = delays
        self._watched: set[str] = set()

    def refused(self, call_id: str, token: str) -> None:
        """A request for `call_id` carrying `token` was refused: watch the call, unless it is
        not a live call of this server, the token is not its token, or it is watched already."""
        session = self._registry.get(call_id)
        if session is None or session.ended or call_id in self._watched:
            return
        if not secrets.compare_digest(session.token.encode(), token.encode("utf-8", "surrogateescape")):
            return
        self._watched.add(call_id)
        self._spawn(self._watch(session))

    async def _watch(self, session: CallSession) -> None:
        try:
            for delay in self._delays:
                if await session.wait_until(lambda: session.ended, delay):
                    return  # its news came after all
                if await self._look_up(session.call_id):
                    return
            log.info("call %s: still live at Twilio after a refused request", session.call_id)
        finally:
            self._watched.discard(session.call_id)


class WatchRefusals:
    """ASGI middleware: every error answer (or failure) of a call's webhook route goes to the
    watch with the call_id and token of its path."""

    def __init__(self, app: ASGIApp, watch: RefusalWatch, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self._watch = watch
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what a failure before the answer's start becomes

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if status >= 400:
                self._refused(scope)

    def _refused(self, scope: Scope) -> None:
        for route in self._routes:
            match, child = route.matches(scope)
            params = child.get("path_params", {})
            if match is not Match.NONE and "call_id" in params and "token" in params:
                self._watch.refused(params["call_id"], params["token"])
                return
