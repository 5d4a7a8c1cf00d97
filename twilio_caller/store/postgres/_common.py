"""What the PostgreSQL repositories share: the one "live calls" condition, parameter marks, and
rows as the SQLite store gives them (timestamps are stored as the same ISO text)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twilio_caller.store.sqlite._common import LIVE_STATUSES, TERMINAL_STATUSES, stamp, utc_stamp

__all__ = ["LIVE_CALLS", "LIVE_STATUSES", "TERMINAL_STATUSES", "marks", "row", "stamp", "utc_stamp"]

LIVE_CALLS = f"placed = 1 AND status IN ({', '.join(['%s'] * len(LIVE_STATUSES))})"
"""THE live calls: the one condition safety, the dialer and the call log count and list."""


def marks(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


def row(values: dict[str, Any]) -> dict[str, Any]:
    """A call row without the insertion order column only PostgreSQL needs."""
    values.pop("seq", None)
    return values
