"""The contact book: the allowlist of people who may be called. Names are unique regardless
of case, numbers are stored in E.164 and must be real, dialable numbers."""

from __future__ import annotations

import csv
import difflib
import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from twilio_caller import numbers
from twilio_caller.clock import Clock
from twilio_caller.errors import ConflictError, InvalidInputError, NotFoundError
from twilio_caller.store import Store
from twilio_caller.store.ports import Contact, ContactFields, Taken

NAME_MAX = 64
CSV_COLUMNS = ("name", "number", "timezone", "voice", "notes")
_UNSET: Any = object()


class ContactBook:
    def __init__(self, store: Store, clock: Clock, region: str) -> None:
        self._contacts = store.contacts
        self._clock = clock
        self._region = region

    def all(self) -> list[Contact]:
        return self._contacts.all()

    def get(self, name: str) -> Contact:
        contact = self._contacts.by_key(_key(name))
        if contact is None:
            raise NotFoundError(f"no contact named {name.strip()!r}{self._closest(name)}")
        return contact

    def find_by_number(self, e164: str) -> Contact | None:
        return self._contacts.by_number(e164)

    def add(
        self,
        name: str,
        number: str,
        timezone: str | None = None,
        voice: str | None = None,
        notes: str | None = None,
    ) -> Contact:
        fields = self.check(name, number, timezone, voice, notes)
        return self._add([fields])[0]

    def update(
        self,
        name: str,
        *,
        new_name: str | None = None,
        number: str | None = None,
        timezone: str | None = _UNSET,
        voice: str | None = _UNSET,
        notes: str | None = _UNSET,
        opt_in: bool = False,
    ) -> Contact:
        current = self.get(name)
        fields = self.check(
            new_name if new_name is not None else current.name,
            number if number is not None else current.number,
            current.timezone if timezone is _UNSET else timezone,
            current.voice if voice is _UNSET else voice,
            current.notes if notes is _UNSET else notes,
        )
        try:
            self._contacts.update(current.id, fields, _key(fields.name), opt_in=opt_in, now=self._clock.now())
        except Taken as taken:
            raise _conflict(taken, fields) from None
        return self.get(fields.name)

    def opt_out(self, e164: str) -> None:
        """The callee asked not to be called again: refuse calls until the owner opts them in."""
        self._contacts.opt_out(e164, self._clock.now())

    def remove(self, name: str) -> Contact:
        contact = self.get(name)
        self._contacts.remove(contact.id)
        return contact

    def import_csv(self, path: Path) -> list[Contact]:
        """Every row, or none: all rows are checked before the first is written."""
        rows = _read_csv(path)
        checked: list[ContactFields] = []
        problems: list[str] = []
        for line, row in rows:
            if row.get(None):
                problems.append(f"line {line}: more values than the header has columns")
                continue
            try:
                fields = self.check(*(row.get(column) for column in CSV_COLUMNS))
            except InvalidInputError as exc:
                problems.append(f"line {line}: {exc.message}")
                continue
            clash = _clash(fields, checked)
            if clash:
                problems.append(f"line {line}: {clash} appears earlier in the file")
            checked.append(fields)
        if problems:
            raise InvalidInputError(
                f"{path}: nothing imported; fix these rows:\n" + "\n".join(problems[:20])
                + (f"\n(and {len(problems) - 20} more)" if len(problems) > 20 else "")
            )
        try:
            return self._add(checked)
        except ConflictError as exc:
            raise ConflictError(f"{path}: nothing imported; {exc.message}") from exc

    def check(
        self,
        name: str | None,
        number: str | None,
        timezone: str | None = None,
        voice: str | None = None,
        notes: str | None = None,
    ) -> ContactFields:
        return ContactFields(
            name=check_name(name or ""),
            number=check_number(number or "", self._region),
            timezone=check_timezone(check_text(timezone, "timezone")),
            voice=check_voice(check_text(voice, "voice")),
            notes=check_text((notes or "").strip(), "notes") or None,
        )

    def _add(self, entries: list[ContactFields]) -> list[Contact]:
        """All of them or none; ConflictError names the first clash with the book."""
        try:
            return self._contacts.add([(fields, _key(fields.name)) for fields in entries], self._clock.now())
        except Taken as taken:
            raise _conflict(taken, entries[taken.index]) from None

    def _closest(self, name: str) -> str:
        names = [contact.name for contact in self.all()]
        by_key = {_key(n): n for n in names}
        close = difflib.get_close_matches(_key(name), list(by_key), n=3, cutoff=0.5)
        if close:
            return f"; did you mean {', '.join(repr(by_key[k]) for k in close)}?"
        return "; no contacts yet (add one with `twilio-caller add`)" if not names else ""


def check_number(raw: str, region: str) -> str:
    """The E.164 form of a number a contact may have: never an emergency, short,
    premium-rate or other never-dialled number (refused now, not only at call time)."""
    number = numbers.parse_regular(check_text(raw, "number") or "", region, "a contact")
    kind = numbers.never_dial_type(number.e164)
    if kind is not None:
        raise InvalidInputError(f"{raw!r} is {kind}; such numbers are never dialled, so it cannot be a contact",
                                field="number")
    return number.e164


def check_text(value: str | None, field: str) -> str | None:
    """`value`, or InvalidInputError naming `field` when it holds control characters
    (NUL, BEL, ESC, ...): they would break the TwiML or the terminal. Tabs and line
    breaks are whitespace, not control characters here."""
    if value is not None and any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in value):
        raise InvalidInputError(f"{field}: contains control characters (such as NUL or BEL); remove them",
                                field=field)
    return value


def check_name(raw: str) -> str:
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name:
        raise InvalidInputError("the contact name must not be empty", field="name")
    if len(name) > NAME_MAX:
        raise InvalidInputError(f"the contact name is longer than {NAME_MAX} characters", field="name")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidInputError("the contact name contains control characters", field="name")
    if not any(ch.isalpha() for ch in name):
        raise InvalidInputError(
            f"the contact name {name!r} needs at least one letter (it must not look like a number)",
            field="name",
        )
    return name


def check_timezone(raw: str | None) -> str | None:
    value = (raw or "").strip()
    if not value:
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(value, sorted(zoneinfo.available_timezones()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (use an IANA name such as America/Chicago)"
        raise InvalidInputError(f"unknown time zone {value!r}{hint}", field="timezone") from None
    return value


def check_voice(raw: str | None) -> str | None:
    from twilio_caller import voices

    value = (raw or "").strip()
    return voices.check_voice(value) if value else None


def _key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def _conflict(taken: Taken, fields: ContactFields) -> ConflictError:
    shown = fields.name if taken.field == "name" else fields.number
    label = "the name" if taken.field == "name" else "the number"
    return ConflictError(f"{label} {shown!r} is already taken by contact {taken.holder!r}", field=taken.field)


def _clash(fields: ContactFields, earlier: Iterable[ContactFields]) -> str | None:
    for other in earlier:
        if _key(other.name) == _key(fields.name):
            return f"the name {fields.name!r}"
        if other.number == fields.number:
            return f"the number {fields.number}"
    return None


def _read_csv(path: Path) -> list[tuple[int, dict[str | None, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            header = [(column or "").strip().lower() for column in reader.fieldnames or []]
            _check_header(path, header)
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader if not _blank(row)]
    except FileNotFoundError:
        raise InvalidInputError(f"no such file: {path}", field="path") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError(f"cannot read {path} as CSV: {exc}", field="path") from exc
    if not rows:
        raise InvalidInputError(f"{path} has a header but no contacts", field="path")
    return rows


def _blank(row: Mapping[str | None, object]) -> bool:
    return not any(isinstance(value, str) and value.strip() for value in row.values())


def _check_header(path: Path, header: list[str]) -> None:
    if not header:
        raise InvalidInputError(
            f"{path} is empty; its first row must name the columns: {', '.join(CSV_COLUMNS)}",
            field="path",
        )
    unknown = [column for column in header if column not in CSV_COLUMNS]
    missing = [column for column in ("name", "number") if column not in header]
    if unknown or missing:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        raise InvalidInputError(
            f"{path}: {'; '.join(problems)}; the columns are: {', '.join(CSV_COLUMNS)}",
            field="path",
        )
