"""The Twilio-facing app: /twilio/{call_id}/{token}/voice|gather|hold|status|amd (the named route
table in transport/twilio/routes.py), each request turned into an event by the transport and
answered by the conversation core.

The call_id is public; the per-call token is the secret part (wrong → 404, nothing
recorded). Every request must carry a valid X-Twilio-Signature, computed over the public
URL Twilio used — not the loopback URL this app sees (forged or missing → 403)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from twilio_caller.audio import AudioLibrary, audio_routes
from twilio_caller.errors import TwilioCallerError
from twilio_caller.conversation import MACHINES
from twilio_caller.server.refusals import RefusalWatch, WatchRefusals
from twilio_caller.sessions import CallSession
from twilio_caller.transport.port import CallTransport, Detected
from twilio_caller.transport.twilio import relay
from twilio_caller.transport.twilio.relay_socket import RelaySockets, connect_twiml
from twilio_caller.transport.twilio.requests import read_form
from twilio_caller.transport.twilio.routes import ROUTES, WebhookUrls
from twilio_caller.transport.twilio.status import answered_by

if TYPE_CHECKING:
    from twilio_caller.dialer import Dialer

log = logging.getLogger("twilio_caller.webhook")
TWIML = "application/xml"


class TwilioWebhook:
    """The endpoints of the route table: check the request, parse it, answer it."""

    def __init__(self, dialer: Dialer, transport: CallTransport, public_base_url: str) -> None:
        self._dialer = dialer
        self._transport = transport
        self._base = public_base_url.rstrip("/")
        self.sockets = RelaySockets(self._session, lambda: dialer.conversation, transport.verify, self._base)

    async def voice(self, request: Request) -> Response:
        return await self._handle(request, "voice")

    async def relay(self, websocket: WebSocket) -> None:
        await self.sockets.serve(websocket)

    async def handoff(self, request: Request) -> Response:
        """The `<Connect action>` of a relay call: the session ended. After our `end` (the
        goodbye was spoken over the socket) the call hangs up. A dropped socket on a live call
        this server may run — its own, one a restart left without a server (its lease is
        claimed here, before reconciliation gets to it), or any call when instances share the
        store — goes on over a new session (`Dialer.going_on`: the cut question asked again,
        or the line held for the agent); when it cannot (the call ended, a machine's, too
        many drops, a socket that never opened: Twilio's 64102), an apology, then the hang-up.
        Answered once per session (`SessionId`): a replay gets the answer on record."""
        checked = await self._authorised(request, claim=True)
        if isinstance(checked, Response):
            return checked
        session, params = checked
        key = relay.handoff_key(params.get("SessionId"))
        ours = session.hung_up_by_us or session.ended or params.get("SessionStatus") == "ended"
        if not ours and not self._dialer.conversation.answered(session, key):  # a replay is not a new drop
            log.warning("call %s: relay session %s without our end (error %s)", session.call_id,
                        params.get("SessionStatus", "unknown")[:40], params.get("ErrorCode", "none")[:10])
        if not ours and session.engine == "relay" and params.get("ErrorCode") != relay.UNABLE_TO_CONNECT:
            going_on = self._dialer.going_on(session)
            return await self._answered(session, self._dialer.conversation.handed_off(
                session, relay.HANDOFF_APOLOGY, key=key, going_on=going_on))
        self._dialer.fall_back_to_gather(session)  # what follows is TwiML, in a voice <Say> has
        return await self._answered(session, self._dialer.conversation.handed_off(
            session, None if ours else relay.HANDOFF_APOLOGY, key=key))

    async def gather(self, request: Request) -> Response:
        return await self._handle(request, "gather")

    async def hold(self, request: Request) -> Response:
        return await self._handle(request, "hold")

    async def status(self, request: Request) -> Response:
        return await self._handle(request, "status")

    async def amd(self, request: Request) -> Response:
        return await self._handle(request, "amd")

    async def _handle(self, request: Request, kind: str) -> Response:
        checked = await self._authorised(request)
        if isinstance(checked, Response):
            return checked
        session, params = checked
        if kind == "voice" and session.engine == "relay":
            return self._connect(session, params)
        event = self._transport.parse_event(session, kind, request.query_params, params)
        if event is None:  # malformed, or a status Twilio never sends: refused, nothing changes
            return Response(status_code=400)
        if session.engine == "relay" and isinstance(event, Detected) and event.answered_by in MACHINES:
            self._dialer.fall_back_to_gather(session)  # the voicemail is left with TwiML (a Calls-API update ends the relay)
        return await self._answered(session, self._dialer.conversation.handle(session, event))

    async def _answered(self, session: CallSession, answering: Awaitable[str | None]) -> Response:
        try:
            answer = await answering
        except TwilioCallerError as exc:  # not recorded (the store refused): the waiting tools were told
            log.error("call %s: %s", session.call_id, exc.message)
            return Response(status_code=500)
        finally:
            if self._dialer.shared is not None:  # what this request showed, for a `call` streaming elsewhere
                self._dialer.shared.publish(session)
        return Response(status_code=204) if answer is None else Response(answer, media_type=TWIML)

    def _connect(self, session: CallSession, params: dict[str, str]) -> Response:
        """A relay call answered: hand its audio to the socket; `setup` opens the conversation
        (the socket URL says who answered: any instance may hold the socket)."""
        return Response(connect_twiml(WebhookUrls(self._base), session, greeting=self.sockets.greeting(session),
                                      answered_by=answered_by(params.get("AnsweredBy") or None)), media_type=TWIML)

    async def _authorised(self, request: Request, *, claim: bool = False) -> tuple[CallSession, dict[str, str]] | Response:
        """The call's session once the request is proven Twilio's (token, then signature);
        with `claim`, a live call no server runs (a restart, its reconciliation not done yet)
        is taken here if its lease can be (`Dialer.claim`)."""
        given = request.path_params["token"].encode("utf-8", "surrogateescape")  # any text: never a 500
        call_id = request.path_params["call_id"]
        try:
            session = await self._session(call_id, given)
        except TwilioCallerError as exc:  # the store could not be read: nothing was changed
            log.error("call %s: %s", call_id[:40], exc.message)
            return Response(status_code=500)
        row: Any = None  # the call's row, when the session is to be claimed
        if session is None and claim and self._dialer.shared is None:
            row = self._dialer.row(call_id)
            if row is None or not secrets.compare_digest(str(row["token"]).encode(), given):
                row = None
        if session is None and row is None:
            return Response(status_code=404)
        params = await read_form(request)
        if isinstance(params, Response):
            return params
        url = self._base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not self._transport.verify(url, params if request.method == "POST" else {}, signature):
            log.warning("rejected a request with a bad signature for call %s", call_id)
            return Response(status_code=403)
        sid = params.get("CallSid") or request.query_params.get("CallSid")
        known = session.twilio_sid if session is not None else row["twilio_sid"]
        if known and sid and sid != known:
            return Response(status_code=404)
        if session is None:
            session = self._dialer.claim(row)
            if session is None:  # ended, or another running server has it
                return Response(status_code=404)
        if sid and not session.twilio_sid:
            session.twilio_sid = sid
        return session, params


    async def _session(self, call_id: str, token: bytes) -> CallSession | None:
        """The call's session when `token` is its token. Instances sharing the store: made
        here from the store when another placed the call, and brought up to date with it."""
        if self._dialer.shared is not None:
            snapshot, revision = await self._dialer.read(call_id)
            known = snapshot is not None and secrets.compare_digest(str(snapshot.row["token"]).encode(), token)
            return await self._dialer.adopt(call_id, snapshot, revision) if known else None
        session = self._dialer.registry.get(call_id)
        if session is None or not secrets.compare_digest(session.token.encode(), token):
            return None
        return session


def build_webhook_app(dialer: Dialer, public_base_url: str, audio: AudioLibrary | None = None) -> Starlette:
    watch = RefusalWatch(dialer.registry, dialer.look_up, dialer.background)
    app = Starlette(routes=[*ROUTES, *(audio_routes(audio) if audio is not None else [])],
                    middleware=[Middleware(WatchRefusals, watch=watch, routes=ROUTES)])
    app.state.endpoints = TwilioWebhook(dialer, dialer.transport, public_base_url)
    return app
