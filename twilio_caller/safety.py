"""The safety validator: a `CallRequest`, the usage the safety ledger counts and the clock →
allowed, or refused with a stable rule id, a reason and, where one exists, the earliest time
the call would pass.

`reserve()` is the gate: through the ledger (store.ports.SafetyLedger) it counts usage,
decides, audits the decision and — when allowed — records the call, all in one transaction
of the ledger's, so no burst of requests from threads or processes can exceed a cap. Its
`Approval` is what telephony re-checks with the ledger before it dials."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_timezones

from twilio_caller import numbers
from twilio_caller.clock import isoformat
from twilio_caller.config import Config
from twilio_caller.errors import ConfigError, InvalidInputError, RefusedError
from twilio_caller.call_request import CallRequest
from twilio_caller.settings import Settings
from twilio_caller.store import Store
from twilio_caller.store.ports import NewCall, Reservation, SafetyLedger, Usage

NEVER_DIAL_TYPES = numbers.NEVER_DIAL_TYPES
AUDITED_MESSAGE_MAX = 200
_AI = re.compile(r"\b(AI|A\.I\.|artificial intelligence)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Window:
    """Daily hours such as 07:00-23:00; 00:00-24:00 is the whole day; may wrap midnight."""

    start: time
    end: time | None  # None: midnight at the end of the day (24:00)

    @classmethod
    def parse(cls, text: str) -> Window:
        first, second = text.split("-")
        return cls(time.fromisoformat(first), None if second == "24:00" else time.fromisoformat(second))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{'24:00' if self.end is None else f'{self.end:%H:%M}'}"

    def contains(self, moment: datetime, zone: ZoneInfo) -> bool:
        local = moment.astimezone(zone).time()
        if self.end is None:
            return local >= self.start
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def starts_after(self, moment: datetime, zone: ZoneInfo, days: int = 3) -> list[datetime]:
        today = moment.astimezone(zone).date()
        starts = (_local(today + timedelta(days=n), self.start, zone) for n in range(days + 1))
        return [start for start in starts if start > moment]


@dataclass(frozen=True)
class Rules:
    owner_zone: ZoneInfo
    calling_hours: Window
    callee_hours: Window | None
    per_contact_per_day: int
    per_day: int
    concurrent: int
    min_gap: timedelta
    allowed_countries: frozenset[str]
    blocked: frozenset[str]
    disclosure_required: bool
    opening: str
    assistant_name: str
    max_duration_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        rules = settings.safety
        return cls(
            owner_zone=rules.zone,
            calling_hours=Window.parse(rules.calling_hours),
            callee_hours=Window.parse(rules.callee_hours) if rules.callee_hours else None,
            per_contact_per_day=rules.max_calls_per_contact_per_day,
            per_day=rules.max_calls_per_day,
            concurrent=rules.max_concurrent_calls,
            min_gap=timedelta(seconds=rules.min_seconds_between_calls_to_contact),
            allowed_countries=frozenset(rules.allowed_countries),
            blocked=frozenset(_normalise_blocked(rules.blocked, settings.phone_region)),
            disclosure_required=rules.disclosure_required,
            opening=settings.identity.opening_text,
            assistant_name=settings.identity.assistant_name,
            max_duration_seconds=rules.max_duration_seconds,
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str | None
    reason: str
    next_allowed_at: datetime | None = None

    def refusal(self) -> RefusedError:
        assert self.rule is not None
        at = isoformat(self.next_allowed_at) if self.next_allowed_at else None
        return RefusedError(self.rule, self.reason, at)


@dataclass(frozen=True)
class Approval:
    """Proof that safety allowed this call: its audited decision and the recorded call."""

    decision_id: int
    call_id: str
    to_number: str
    time_limit: int


ALLOW = Decision(True, None, "all safety rules pass")


IDENTITY_KEYS = ("identity.assistant_name", "identity.owner_name")


def require_identity(config: Config) -> None:
    """Real calls introduce the owner's assistant by the names the owner set: the built-in
    ones are for simulated calls only."""
    missing = [key for key in IDENTITY_KEYS if not config.is_set(key)]
    if missing:
        raise ConfigError(
            f"real calls say who is calling: set {' and '.join(missing)} in "
            f"{config.file or config.home / 'config.yaml'} (e.g. identity: {{assistant_name: Ada, "
            "owner_name: Sam}); the built-in names are used only in simulated calls"
        )


def evaluate(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision:
    """The first rule that refuses, in order of precedence; else ALLOW. Pure: no I/O."""
    for check in (_blocked, _never_dial, _country, _allowlist, _opted_out, _disclosure,
                  _hours, _concurrency, _global_cap, _contact_cap, _gap):
        decision = check(request, usage, now, rules)
        if decision is not None:
            return decision
    return ALLOW


def reserve(
    ledger: SafetyLedger,
    request: CallRequest,
    now: datetime,
    rules: Rules,
    *,
    tool: str,
    new_call: NewCall | None,
) -> tuple[Decision, Approval | None]:
    """Decide and audit; when allowed and `new_call` is given, the ledger records the call in
    the same transaction and this returns the approval telephony needs. A dry run passes no
    `new_call`."""
    reservation = Reservation(
        tool=tool, to_number=request.to_number, contact_id=request.contact.id if request.contact else None,
        message=_audited(request.message), now=now, day=day_bounds(now, rules.owner_zone), call=new_call,
    )
    decision, reserved = ledger.reserve(reservation, lambda usage: evaluate(request, usage, now, rules))
    approval = (
        Approval(reserved.decision_id, reserved.call_id, request.to_number, rules.max_duration_seconds)
        if reserved.call_id
        else None
    )
    return decision, approval


def day_bounds(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The owner's calendar day around `now`, as UTC moments."""
    day = now.astimezone(zone).date()
    return _utc(_local(day, time.min, zone)), _utc(_local(day + timedelta(days=1), time.min, zone))


def callee_zone(request: CallRequest) -> ZoneInfo | list[str]:
    """The callee's zone: the contact's, else the number's own when it has exactly one;
    otherwise the candidate zones (empty when unknown)."""
    if request.contact and request.contact.timezone:
        return ZoneInfo(request.contact.timezone)
    parsed = phonenumbers.parse(request.to_number)
    zones = [z for z in number_timezones.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    return ZoneInfo(zones[0]) if len(zones) == 1 else zones


def _blocked(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    if request.to_number in rules.blocked:
        return Decision(False, "blocked", f"{request.to_number} is on the blocked list (safety.blocked)")
    return None


def _never_dial(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    kind = request.number.kind
    if kind is numbers.Kind.EMERGENCY:
        return Decision(False, "never_dial",
                        f"{request.to_number} is an emergency number; an assistant never dials it. "
                        "If there is an emergency, the user must call it themselves.")
    if kind is numbers.Kind.SHORT:
        return Decision(False, "never_dial",
                        f"{request.to_number} is a short code or service number; these are never dialled")
    number_type = phonenumbers.number_type(phonenumbers.parse(request.to_number))
    if number_type in NEVER_DIAL_TYPES:
        return Decision(False, "never_dial",
                        f"{request.to_number} is {NEVER_DIAL_TYPES[number_type]}; such numbers are never dialled")
    return None


def _country(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    region = request.number.region
    if region not in rules.allowed_countries:
        allowed = ", ".join(sorted(rules.allowed_countries))
        return Decision(False, "country",
                        f"{request.to_number} is in {region or 'an unknown country'}; only {allowed} "
                        "may be called (safety.allowed_countries)")
    return None


def _allowlist(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    if request.contact is None:
        return Decision(False, "allowlist",
                        f"{request.to_number} is not in the contact book; only contacts may be called. "
                        "Ask the user to add it first (add_contact).")
    return None


def _opted_out(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    if request.contact and request.contact.opted_out_at:
        return Decision(False, "opted_out",
                        f"{request.contact.name} asked not to be called again "
                        f"(on {request.contact.opted_out_at}); only the owner can opt them back in "
                        f"(`twilio-caller update \"{request.contact.name}\" --opt-in`)")
    return None


def _disclosure(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    if not rules.disclosure_required:
        return None
    if rules.assistant_name.casefold() in rules.opening.casefold() and _AI.search(rules.opening):
        return None
    return Decision(False, "disclosure",
                    f"the opening {rules.opening!r} must name the assistant "
                    f"({rules.assistant_name}) and say it is an AI (identity.opening)")


def _hours(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    zone = callee_zone(request)
    if rules.callee_hours and not isinstance(zone, ZoneInfo):
        return Decision(False, "callee_timezone_unknown",
                        f"{request.to_number} spans several time zones, so its local time is unknown; "
                        f"set the contact's timezone (update \"{request.to_name}\" --timezone ZONE)")
    if not rules.calling_hours.contains(now, rules.owner_zone):
        return Decision(False, "calling_hours",
                        f"it is {_clock_time(now, rules.owner_zone)}, outside the calling hours "
                        f"{rules.calling_hours} ({rules.owner_zone.key})", _next_open(now, request, rules))
    if rules.callee_hours and isinstance(zone, ZoneInfo) and not rules.callee_hours.contains(now, zone):
        return Decision(False, "callee_hours",
                        f"it is {_clock_time(now, zone)} for the callee, outside "
                        f"{rules.callee_hours} in their time zone ({zone.key})",
                        _next_open(now, request, rules))
    return None


def _concurrency(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    if usage.live_calls >= rules.concurrent:
        return Decision(False, "concurrency",
                        f"{usage.live_calls} calls are live; at most {rules.concurrent} at once "
                        "(try again when one ends)")
    return None


def _global_cap(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    if usage.calls_today >= rules.per_day:
        return Decision(False, "global_daily_cap",
                        f"{usage.calls_today} calls placed today; at most {rules.per_day} a day",
                        _next_open(_next_midnight(now, rules.owner_zone), request, rules))
    return None


def _contact_cap(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    if usage.contact_calls_today >= rules.per_contact_per_day:
        return Decision(False, "daily_cap",
                        f"{request.to_name} was called {usage.contact_calls_today} times today; "
                        f"at most {rules.per_contact_per_day} a day",
                        _next_open(_next_midnight(now, rules.owner_zone), request, rules))
    return None


def _gap(request: CallRequest, usage: Usage, now: datetime, rules: Rules) -> Decision | None:
    last = usage.last_contact_call_at
    if last is not None and now < last + rules.min_gap:
        wait = int((last + rules.min_gap - now).total_seconds()) + 1
        return Decision(False, "min_gap",
                        f"{request.to_name} was called {int((now - last).total_seconds())} s ago; "
                        f"wait {wait} s between calls to the same contact",
                        _next_open(last + rules.min_gap, request, rules))
    return None


def _next_open(after: datetime, request: CallRequest, rules: Rules) -> datetime | None:
    """The earliest moment at or after `after` when every hours window is open."""
    windows = [(rules.calling_hours, rules.owner_zone)]
    zone = callee_zone(request)
    if rules.callee_hours and isinstance(zone, ZoneInfo):
        windows.append((rules.callee_hours, zone))
    candidates = [after] + sorted(s for w, z in windows for s in w.starts_after(after, z, days=8))
    return next((c for c in candidates if all(w.contains(c, z) for w, z in windows)), None)


def _next_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    return _local(now.astimezone(zone).date() + timedelta(days=1), time.min, zone)


def _local(day: date, clock_time: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a day in `zone`. A time that DST skips lands just as far past the
    gap (02:30 on a spring-forward day → 03:30); a repeated one takes its first occurrence."""
    moment = datetime.combine(day, clock_time, tzinfo=zone)
    return moment.astimezone(timezone.utc).astimezone(zone)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _clock_time(now: datetime, zone: ZoneInfo) -> str:
    return now.astimezone(zone).strftime("%H:%M %Z")


def _normalise_blocked(entries: Iterable[str], region: str) -> set[str]:
    blocked = set()
    for entry in entries:
        try:
            blocked.add(numbers.parse(entry, region).e164)
        except InvalidInputError:  # an unparsable entry still blocks its exact digits
            blocked.add("".join(ch for ch in entry if ch.isdigit() or ch == "+"))
    return blocked


def _audited(message: str) -> str:
    """The message as the audit keeps it: at most AUDITED_MESSAGE_MAX characters."""
    if len(message) > AUDITED_MESSAGE_MAX:
        return message[: AUDITED_MESSAGE_MAX - 1] + "…"
    return message


_OPT_OUT = re.compile(
    r"\b(?:(?:don'?t|do not|never|stop)\s+(?:ever\s+)?(?:call|calling|ring|ringing|phone|phoning|contact|contacting)"
    r"\s+(?:me|us|here|this number)"
    r"|stop\s+calling"
    r"|take\s+(?:me|us|my number|this number)\s+off"
    r"|(?:remove|delete)\s+(?:me|us|my number|this number)"
    r"|no more calls"
    r"|unsubscribe"
    r"|opt\s*(?:me\s+)?out"
    r"|leave me alone)\b",
    re.IGNORECASE,
)


def is_opt_out(speech: str) -> bool:
    """Whether the callee asked not to be called again. Errs towards yes: the owner can
    opt a contact back in, but an unwanted call cannot be taken back."""
    return bool(_OPT_OUT.search(speech.replace("’", "'")))


def report(store: Store, rules: Rules, now: datetime) -> dict[str, Any]:
    """The rules in force and today's usage, per contact."""
    usage = store.ledger.day_usage(day_bounds(now, rules.owner_zone))
    counts = usage.per_contact
    total = usage.calls
    return {
        "rules": {
            "timezone": rules.owner_zone.key,
            "calling_hours": str(rules.calling_hours),
            "callee_hours": str(rules.callee_hours) if rules.callee_hours else None,
            "max_calls_per_contact_per_day": rules.per_contact_per_day,
            "max_calls_per_day": rules.per_day,
            "max_concurrent_calls": rules.concurrent,
            "min_seconds_between_calls_to_contact": rules.min_gap.total_seconds(),
            "max_duration_seconds": rules.max_duration_seconds,
            "allowed_countries": sorted(rules.allowed_countries),
            "blocked": sorted(rules.blocked),
            "disclosure_required": rules.disclosure_required,
            "opening": rules.opening,
        },
        "now": {
            "owner_time": now.astimezone(rules.owner_zone).isoformat(timespec="seconds"),
            "within_calling_hours": rules.calling_hours.contains(now, rules.owner_zone),
        },
        "today": {
            "calls": total,
            "remaining": max(rules.per_day - total, 0),
            "live_calls": usage.live_calls,
            "contacts": [
                {
                    "name": contact.name,
                    "number": contact.number,
                    "calls": counts.get(contact.id, 0),
                    "remaining": max(rules.per_contact_per_day - counts.get(contact.id, 0), 0),
                    "opted_out": contact.opted_out_at is not None,
                }
                for contact in store.contacts.all()
            ],
        },
    }
