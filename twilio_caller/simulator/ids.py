"""Twilio-shaped identifiers and timestamps."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from email.utils import format_datetime


def new_sid(prefix: str) -> str:
    """A SID as Twilio writes them: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime) -> str:
    """`Fri, 18 Oct 2019 17:00:00 +0000`, the form of every Twilio timestamp."""
    return format_datetime(moment.astimezone(timezone.utc))
