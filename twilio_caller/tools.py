"""The tools an agent calls: plain typed functions, declared in skill.yaml. Each takes the
runtime first and keyword-only arguments already validated against its schema; each
returns a JSON-ready dict in the shape of its `returns` schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twilio_caller.runtime import Runtime

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
    timezone: str | None = _KEEP,
    voice: str | None = _KEEP,
    notes: str | None = _KEEP,
) -> dict[str, Any]:
    given = {
        key: value
        for key, value in {"timezone": timezone, "voice": voice, "notes": notes}.items()
        if value is not _KEEP
    }
    return rt.contacts.update(name, new_name=new_name, number=number, **given).to_dict()


def remove_contact(rt: Runtime, *, name: str) -> dict[str, Any]:
    return {"removed": rt.contacts.remove(name).to_dict()}


def list_contacts(rt: Runtime) -> dict[str, Any]:
    return {"contacts": [contact.to_dict() for contact in rt.contacts.list()]}


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
    contact_id = rt.contacts.get(contact).id if contact is not None else None
    calls = rt.calls.list(contact_id=contact_id, status=status, since=since, limit=limit)
    return {"calls": calls}
