"""The tools an agent calls: plain typed functions, declared in skill.yaml. Each takes the
runtime first and keyword-only arguments already validated against its schema; each
returns a JSON-ready dict in the shape of its `returns` schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from twilio_caller.invocation import Invocation
from twilio_caller.runtime import Runtime

if TYPE_CHECKING:
    from twilio_caller.server.client import ServerClient

_KEEP: Any = object()  # "argument not given": leave the field as it is


def add_contact(
    rt: Runtime,
    *,
    name: str,
    number: str,
    timezone: str | None = None,
    voice: str | None = None,
    notes: str | None = None,
) -> dict[str, Any]:
    return rt.contacts.add(name, number, timezone, voice, notes).to_dict()


def update_contact(
    rt: Runtime,
    *,
    name: str,
    new_name: str | None = None,
    number: str | None = None,
    opt_in: bool = False,
    timezone: str | None = _KEEP,
    voice: str | None = _KEEP,
    notes: str | None = _KEEP,
) -> dict[str, Any]:
    given = {
        key: value
        for key, value in {"timezone": timezone, "voice": voice, "notes": notes}.items()
        if value is not _KEEP
    }
    return rt.contacts.update(name, new_name=new_name, number=number, opt_in=opt_in, **given).to_dict()


def remove_contact(rt: Runtime, *, name: str) -> dict[str, Any]:
    return {"removed": rt.contacts.remove(name).to_dict()}


def list_contacts(rt: Runtime) -> dict[str, Any]:
    return {"contacts": [contact.to_dict() for contact in rt.contacts.all()]}


def import_contacts(rt: Runtime, *, path: str) -> dict[str, Any]:
    imported = rt.contacts.import_csv(Path(path).expanduser())
    return {"imported": [contact.to_dict() for contact in imported]}


def list_calls(
    rt: Runtime,
    *,
    contact: str | None = None,
    status: str | None = None,
    since: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    contact_id, removed = _contact_of_calls(rt, contact) if contact is not None else (None, None)
    calls = rt.calls.list(contact_id=contact_id, removed_contact=removed, status=status, since=since,
                          limit=limit)
    return {"calls": calls}


def _contact_of_calls(rt: Runtime, name: str) -> tuple[int | None, str | None]:
    """(its id, None) for a contact in the book; (None, name) for a contact removed since,
    whose calls keep its name; NotFoundError when neither."""
    from twilio_caller.errors import NotFoundError

    try:
        return rt.contacts.get(name).id, None
    except NotFoundError:
        if rt.calls.removed_contact_called(name):
            return None, name
        raise


def call(
    rt: Runtime,
    invocation: Invocation,
    /,
    *,
    to: str,
    message: str,
    interactive: bool = False,
    voice: str | None = None,
    language: str | None = None,
    keep_open: bool = False,
    closing: str | None = None,
    dry_run: bool = False,
    wait: bool = True,
    timeout_seconds: float = 50,
    send_digits: str | None = None,
    at: str | None = None,
    retry: dict[str, Any] | None = None,
    when_allowed: bool = False,
    engine: str | None = None,
) -> dict[str, Any]:
    arguments = {
        "to": to, "message": message, "interactive": interactive, "keep_open": keep_open,
        "wait": wait, "timeout_seconds": timeout_seconds, "voice": voice, "language": language,
        "closing": closing, "send_digits": send_digits, "engine": engine,
    }
    arguments = {key: value for key, value in arguments.items() if value is not None}
    if dry_run:
        return _dry_run(rt, arguments)
    from twilio_caller.errors import RefusedError

    if not invocation.simulate:
        from twilio_caller.safety import require_identity

        rt.settings_in_force().twilio.account()  # no account: say which variables to set, now
        require_identity(rt.config)
    if at is not None or retry:
        return _schedule(rt, invocation, arguments, at, retry, when_allowed)
    server = _server(rt, invocation)
    extra = {"callee": dict(invocation.callee)} if invocation.callee else None
    try:
        return server.invoke("call", arguments, wait_seconds=timeout_seconds, extra=extra,
                             progress=invocation.progress)
    except RefusedError as refusal:
        if not when_allowed or refusal.rule not in ("calling_hours", "callee_hours") or not refusal.next_allowed_at:
            raise
        return _schedule(rt, invocation, arguments, refusal.next_allowed_at, None, True,
                         detail=f"refused now ({refusal.rule}: {refusal.reason}); scheduled for then")


def list_scheduled(rt: Runtime, *, include_finished: bool = False) -> dict[str, Any]:
    from twilio_caller.scheduled import ScheduleBook
    from twilio_caller.scheduler import describe

    book = ScheduleBook(rt.store, rt.clock)
    return {"scheduled": [describe(rt, item) for item in book.all(include_finished=include_finished)]}


def cancel_scheduled(rt: Runtime, *, scheduled_id: str) -> dict[str, Any]:
    from twilio_caller.scheduled import ScheduleBook
    from twilio_caller.scheduler import describe

    return {"canceled": describe(rt, ScheduleBook(rt.store, rt.clock).cancel(scheduled_id))}


def _schedule(rt: Runtime, invocation: Invocation, arguments: dict[str, Any], at: str | None, retry: dict[str, Any] | None,
              when_allowed: bool, detail: str | None = None) -> dict[str, Any]:
    """A call for later (or now, with retries): checked as a request now (the contact, the
    arguments), decided by the safety rules when it is dialed; the server dials it."""
    from twilio_caller import call_request, when
    from twilio_caller.errors import InvalidInputError
    from twilio_caller.scheduled import Retry, ScheduleBook
    from twilio_caller.scheduler import describe

    if arguments.get("keep_open"):
        raise InvalidInputError("a scheduled call cannot keep_open: nobody steers it when it is dialed; "
                                "use interactive to hear the answer", field="keep_open")
    if arguments.get("send_digits"):
        raise InvalidInputError("send_digits is for calls placed now", field="send_digits")
    request = call_request.from_arguments(rt.contacts, rt.settings, arguments)
    now = rt.clock.now()
    due = when.due_at(at, now, rt.settings.safety.timezone) if at is not None else now
    _server(rt, invocation)  # it dials; it stays up while calls are scheduled
    item = ScheduleBook(rt.store, rt.clock).add(arguments, request.to_name, request.to_number, due,
                                                Retry.from_arguments(retry), when_allowed=when_allowed,
                                                detail=detail)
    return describe(rt, item)


def say(rt: Runtime, *, call_id: str, message: str, expect_reply: bool = True,
        timeout_seconds: float = 50, language: str | None = None) -> dict[str, Any]:
    arguments = {"call_id": call_id, "message": message, "expect_reply": expect_reply,
                 "timeout_seconds": timeout_seconds, **({"language": language} if language else {})}
    return _live_call(rt, "say", arguments, timeout_seconds)


def wait(rt: Runtime, invocation: Invocation, /, *, call_id: str, until: str = "reply", timeout_seconds: float = 50) -> dict[str, Any]:
    arguments = {"call_id": call_id, "until": until, "timeout_seconds": timeout_seconds}
    if call_id.startswith("sched_"):
        return _scheduled_wait(rt, invocation, arguments, timeout_seconds)
    return _live_call(rt, "wait", arguments, timeout_seconds)


def _scheduled_wait(rt: Runtime, invocation: Invocation, arguments: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
    from twilio_caller.scheduled import ScheduleBook
    from twilio_caller.scheduler import describe

    item = ScheduleBook(rt.store, rt.clock).get(arguments["call_id"])
    if item.final:
        return describe(rt, item)
    server = _server(rt, invocation)  # a server that was down dials it (or reports it missed)
    return server.invoke("wait", arguments, wait_seconds=timeout_seconds)


def hangup(rt: Runtime, *, call_id: str, message: str | None = None) -> dict[str, Any]:
    arguments = {"call_id": call_id, **({"message": message} if message else {})}
    return _live_call(rt, "hangup", arguments, 30)


def press(rt: Runtime, *, call_id: str, digits: str) -> dict[str, Any]:
    return _live_call(rt, "press", {"call_id": call_id, "digits": digits}, 30)


def call_status(rt: Runtime, *, call_id: str) -> dict[str, Any]:
    from twilio_caller.server.client import find_server

    if call_id.startswith("sched_"):
        from twilio_caller.scheduled import ScheduleBook
        from twilio_caller.scheduler import describe

        return describe(rt, ScheduleBook(rt.store, rt.clock).get(call_id))

    server = find_server(rt.home)
    if server is not None:
        return server.invoke("call_status", {"call_id": call_id}, wait_seconds=5)
    return _stored_call(rt, call_id)


def reconcile_calls(rt: Runtime, invocation: Invocation, /) -> dict[str, Any]:
    from twilio_caller.server.client import find_server

    server = find_server(rt.home) or _server(rt, invocation)
    return server.invoke("reconcile_calls", {}, wait_seconds=120)


def _server(rt: Runtime, invocation: Invocation) -> ServerClient:
    """The server for this home in the invocation's mode, started if none runs, restarted if
    it runs with other fixed settings than this client's config and environment give now."""
    from twilio_caller.server.client import ensure_server
    from twilio_caller.server.settings import fingerprint, fixed_settings

    mode = "simulate" if invocation.simulate else "live"
    wanted = fingerprint(fixed_settings(rt.rules_in_force(), mode))
    return ensure_server(rt.home, simulate=invocation.simulate, settings=wanted)


def _live_call(rt: Runtime, tool: str, arguments: dict[str, Any], wait_seconds: float) -> dict[str, Any]:
    """A tool on a live call, through the server that runs it. When none runs (it was killed or
    stopped), a call the store still holds as live is followed: the next server of the home is
    started, takes the call back (or closes it with the reason Twilio gives), then answers."""
    from twilio_caller.errors import InvalidInputError
    from twilio_caller.server.client import find_server
    from twilio_caller.server.follow import next_server

    server = find_server(rt.home, check_health=False)
    if server is None:
        record = _stored_call(rt, arguments["call_id"])
        if record["ended"]:
            raise InvalidInputError(f"call {record['call_id']} has ended (status: {record['status']})",
                                    field="call_id")
        simulate = Invocation.from_environment(rt.environ).simulate
        server = next_server(rt.home, record["call_id"], simulate)
    return server.invoke(tool, arguments, wait_seconds=wait_seconds)


def _stored_call(rt: Runtime, call_id: str) -> dict[str, Any]:
    from twilio_caller.calls import CallWriter
    from twilio_caller.errors import NotFoundError

    record = CallWriter(rt.store, rt.clock).get(call_id)
    if record is None:
        raise NotFoundError(f"no call with call_id {call_id!r} (list_calls shows recent calls)")
    return record


def _dry_run(rt: Runtime, arguments: dict[str, Any]) -> dict[str, Any]:
    from twilio_caller import call_request, safety

    settings = rt.settings_in_force()
    request = call_request.from_arguments(rt.contacts, settings, arguments)
    decision, _ = safety.reserve(rt.store.ledger, request, rt.clock.now(), safety.Rules.from_settings(settings),
                                 tool="call (dry run)", new_call=None)
    if not decision.allowed:
        raise decision.refusal()
    return {
        "dry_run": True,
        "allowed": True,
        "to": {"name": request.to_name, "number": request.to_number},
        "mode": "interactive" if request.interactive else "notify",
        "keep_open": request.keep_open,
        "opening": settings.identity.opening_text,
        "message": request.message,
        "voice": request.voice,
        "language": request.language,
        "engine": request.engine,
    }


def safety_rules(rt: Runtime) -> dict[str, Any]:
    from twilio_caller import safety

    return safety.report(rt.store, safety.Rules.from_settings(rt.settings), rt.clock.now())


def call_latency(rt: Runtime, *, limit: int = 50) -> dict[str, Any]:
    """p50/p95 of the latency figures of the latest `limit` calls (latency.py)."""
    from twilio_caller import latency

    return latency.over_calls([call["latency"] for call in rt.calls.list(limit=limit)])


def purge_calls(rt: Runtime, *, older_than_days: int | None = None, contact: str | None = None) -> dict[str, Any]:
    from datetime import timedelta

    from twilio_caller.errors import InvalidInputError

    if older_than_days is None and contact is None:
        raise InvalidInputError("say what to purge: older_than_days, contact, or both")
    contact_id, removed = _contact_of_calls(rt, contact) if contact is not None else (None, None)
    before = rt.clock.now() - timedelta(days=older_than_days) if older_than_days is not None else None
    return {"purged": rt.calls.purge(before=before, contact_id=contact_id, removed_contact=removed)}
