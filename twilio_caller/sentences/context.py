"""What the sentence grammar knows about the world: the contact book's names, the owner's
name, the recent calls and the time, gathered once per sentence (`Context.from_runtime`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from twilio_caller.call_status import LIVE

if TYPE_CHECKING:
    from twilio_caller.runtime import Runtime

Parse = dict[str, Any]  # {"tool": name, "arguments": {...}} or {"clarify": {...}}


def tool(name: str, /, **arguments: Any) -> Parse:
    return {"tool": name, "arguments": arguments}


def clarify(reason: str, question: str, options: Sequence[str] = ()) -> Parse:
    return {"clarify": {"reason": reason, "question": question, "options": list(options)}}


# --- what the grammar knows about the world --------------------------------------------


@dataclass(frozen=True)
class KnownCall:
    call_id: str
    name: str | None
    number: str
    live: bool


@dataclass(frozen=True)
class Context:
    """The contact book's names, the owner's name and the recent calls (newest first)."""

    contacts: Sequence[str]
    owner: str = "Robert"
    calls: Sequence[KnownCall] = ()
    now: datetime | None = None  # for "tomorrow at 9am"; None: the phrase is passed on as written
    timezone: str = "America/Chicago"  # the owner's

    @classmethod
    def from_runtime(cls, rt: Runtime, recent: int = 50) -> Context:
        calls = [
            KnownCall(c["call_id"], c["to"]["name"], c["to"]["number"], c["status"] in LIVE)
            for c in rt.calls.list(limit=recent)
        ]
        names = [contact.name for contact in rt.contacts.all()]
        return cls(contacts=names, owner=rt.settings.identity.owner_name, calls=calls,
                   now=rt.clock.now(), timezone=rt.settings.safety.timezone)

    @property
    def live_calls(self) -> list[KnownCall]:
        return [call for call in self.calls if call.live]

    def recent_names(self, limit: int = 3) -> list[str]:
        names: list[str] = []
        for call in self.calls:
            if call.name and call.name not in names:
                names.append(call.name)
        return names[:limit]
