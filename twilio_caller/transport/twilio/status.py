"""Twilio's call status words and AnsweredBy values in the port's vocabulary (CallStatus)."""

from __future__ import annotations

from twilio_caller.call_status import PROVIDER, CallStatus


ANSWERED_BY = frozenset({"human", "machine_start", "machine_end_beep", "machine_end_silence",
                         "machine_end_other", "fax", "unknown"})


def call_status(raw: str) -> CallStatus | None:
    """A CallStatus callback's word, or None when it is missing or not one Twilio sends."""
    return CallStatus(raw) if raw in PROVIDER else None


def answered_by(raw: str | None) -> str | None:
    """Twilio's AnsweredBy values, as the result reports them: human, machine, fax, unknown."""
    if not raw:
        return None
    return "machine" if raw.startswith("machine") else raw


def duration_seconds(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None
