"""What the SQLite repositories share: timestamps as stored, rows as plain mappings, and the
one "live calls" condition."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from twilio_caller.call_status import LIVE, TERMINAL

LIVE_STATUSES = tuple(sorted(LIVE))
TERMINAL_STATUSES = tuple(sorted(TERMINAL))
LIVE_CALLS = f"placed = 1 AND status IN ({', '.join('?' * len(LIVE_STATUSES))})"
"""THE live calls: the one condition safety, the dialer and the call log count and list."""


def stamp(moment: datetime) -> str:
    """A moment as the store keeps it: ISO-8601, seconds precision, its own offset."""
    return moment.isoformat(timespec="seconds")


def utc_stamp(moment: datetime) -> str:
    """A bound compared with stored timestamps: in UTC, as the clock writes them."""
    return stamp(moment.astimezone(timezone.utc))


def marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def as_dict(row: sqlite3.Row | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None
