"""Phone numbers through phonenumbers: any common written form → E.164, and what kind of
number it is (emergency and short numbers are told apart from merely invalid ones)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import phonenumbers
from phonenumbers import PhoneNumberFormat, shortnumberinfo

from twilio_caller.errors import InvalidInputError

_ALLOWED_CHARACTERS = re.compile(r"^[0-9+().\-\s/]+$")


class Kind(Enum):
    REGULAR = "regular"
    EMERGENCY = "emergency"
    SHORT = "short"


@dataclass(frozen=True)
class PhoneNumber:
    raw: str
    e164: str
    kind: Kind
    region: str | None  # region of the number itself (+1 809 → DO), None for short numbers


def looks_like_number(text: str) -> bool:
    return bool(_ALLOWED_CHARACTERS.match(text.strip())) and any(c.isdigit() for c in text)


def parse(raw: str, default_region: str) -> PhoneNumber:
    """Classify `raw`; InvalidInputError when it is no phone number at all."""
    text = raw.strip()
    if not looks_like_number(text):
        raise InvalidInputError(
            f"{raw!r} is not a phone number: use digits, e.g. 312-555-0123 or +13125550123",
            field="number",
        )
    digits = re.sub(r"\D", "", text)
    if not text.startswith("+") and shortnumberinfo.is_emergency_number(digits, default_region):
        return PhoneNumber(raw, digits, Kind.EMERGENCY, default_region)
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInputError(f"{raw!r} is not a phone number: {exc._msg}", field="number") from exc
    if not text.startswith("+") and _is_short(number, default_region):
        return PhoneNumber(raw, digits, Kind.SHORT, default_region)
    if not phonenumbers.is_valid_number(number):
        raise InvalidInputError(_invalid_reason(raw, number, default_region), field="number")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return PhoneNumber(raw, e164, Kind.REGULAR, phonenumbers.region_code_for_number(number))


def parse_regular(raw: str, default_region: str, purpose: str) -> PhoneNumber:
    """Like `parse`, but an emergency or short number is refused for `purpose`."""
    number = parse(raw, default_region)
    if number.kind is Kind.EMERGENCY:
        raise InvalidInputError(
            f"{raw!r} is an emergency number and cannot be {purpose}", field="number"
        )
    if number.kind is Kind.SHORT:
        raise InvalidInputError(
            f"{raw!r} is a short code or service number and cannot be {purpose}", field="number"
        )
    return number


NEVER_DIAL_TYPES = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.UAN: "a universal access number",
    phonenumbers.PhoneNumberType.PAGER: "a pager",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail access number",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number",
}


def never_dial_type(e164: str) -> str | None:
    """What kind of never-dialled number this is (premium-rate, pager, ...), or None."""
    return NEVER_DIAL_TYPES.get(phonenumbers.number_type(phonenumbers.parse(e164)))


def _is_short(number: phonenumbers.PhoneNumber, region: str) -> bool:
    national = str(number.national_number)
    return len(national) <= 6 and shortnumberinfo.is_possible_short_number_for_region(
        number, region
    )


def _invalid_reason(raw: str, number: phonenumbers.PhoneNumber, region: str) -> str:
    if not phonenumbers.is_possible_number(number):
        length = len(str(number.national_number))
        return (
            f"{raw!r} is not a valid phone number: {length} digits is the wrong length "
            f"(numbers without a country code are read as {region}; write +<country code> "
            "for others)"
        )
    return (
        f"{raw!r} is not a valid phone number: no such number exists in its numbering plan "
        "(check the area code; made-up numbers such as 555-123-4567 do not exist)"
    )
