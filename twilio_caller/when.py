"""When a scheduled call is due: an ISO date-time ("2026-12-01T09:00", in the owner's time
zone unless it has an offset) or a phrase — "in 20 minutes", "in 2 hours", "at 6pm",
"tomorrow at 9am", "today at 14:30", "tonight", "tonight at 8" — read in the owner's time
zone (`safety.timezone`). A time of day already past today means tomorrow ("at 6pm" said at
7pm); "tonight" is 19:00."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from twilio_caller.errors import InvalidInputError

TONIGHT = time(19, 0)
PHRASE = (
    r"in\s+(?P<amount>\d{1,4}|an?|one|two|three|half\s+an)\s+(?P<unit>minutes?|mins?|hours?|hrs?)"
    r"|(?:(?P<day>today|tomorrow|tonight)\s+)?at\s+(?P<clock>\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)?)"
    r"(?:\s+(?P<day2>today|tomorrow|tonight))?"
    r"|(?P<alone>tonight|tomorrow\s+morning|tomorrow\s+evening)"
)
_PHRASE = re.compile(rf"(?:{PHRASE})", re.IGNORECASE)
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
_EXAMPLES = '"2026-12-01T09:00", "in 20 minutes", "at 6pm", "tomorrow at 9am" or "tonight"'


def due_at(text: str, now: datetime, zone: str) -> datetime:
    """The moment `text` names, timezone-aware; InvalidInputError (field `at`) otherwise."""
    tz = ZoneInfo(zone)
    cleaned = " ".join(text.strip().split())
    moment = _iso(cleaned, tz) or _phrase(cleaned, now.astimezone(tz))
    if moment is None:
        raise InvalidInputError(f"at: {text!r} is not a time I understand; write it like {_EXAMPLES}",
                                field="at")
    if moment <= now - timedelta(minutes=1):
        raise InvalidInputError(f"at: {moment.isoformat(timespec='minutes')} has already passed", field="at")
    return moment


def _iso(text: str, tz: ZoneInfo) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _phrase(text: str, local_now: datetime) -> datetime | None:
    match = _PHRASE.fullmatch(text)
    if match is None:
        return None
    if match.group("amount"):
        return local_now + _duration(match.group("amount"), match.group("unit"))
    if match.group("alone"):
        alone = match.group("alone").lower()
        day = "tonight" if alone == "tonight" else "tomorrow"
        wanted = TONIGHT if alone != "tomorrow morning" else time(9, 0)
        return _on_day(day, wanted, local_now)
    day = match.group("day") or match.group("day2")
    clock = _clock(match.group("clock"), day)
    return None if clock is None else _on_day(day, clock, local_now)


def _duration(amount: str, unit: str) -> timedelta:
    lowered = amount.lower()
    value = 0.5 if lowered.startswith("half") else float(_WORDS.get(lowered) or int(lowered))
    return timedelta(hours=value) if unit.lower().startswith("h") else timedelta(minutes=value)


def _clock(text: str, day: str | None) -> time | None:
    match = re.fullmatch(r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<half>am|pm|a\.m\.|p\.m\.)?", text.strip(),
                         re.IGNORECASE)
    if match is None:
        return None
    hour, minute = int(match.group("h")), int(match.group("m") or 0)
    half = (match.group("half") or "").lower().replace(".", "")
    if half == "pm" and hour < 12:
        hour += 12
    elif half == "am" and hour == 12:
        hour = 0
    elif not half and day and day.lower() == "tonight" and hour < 12:
        hour += 12  # "tonight at 8"
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _on_day(day: str | None, wanted: time, local_now: datetime) -> datetime:
    base = local_now.replace(hour=wanted.hour, minute=wanted.minute, second=0, microsecond=0)
    if day and day.lower() == "tomorrow":
        return base + timedelta(days=1)
    if base <= local_now and not (day and day.lower() in ("today", "tonight")):
        return base + timedelta(days=1)  # a time already past today: the next one
    return base
