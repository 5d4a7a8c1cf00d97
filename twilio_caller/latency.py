"""Latency telemetry: timing marks of a call as the server sees them, kept as `latency` events
in the call's record (written through the call repository), and the figures made of them —
per call (the `latency` field of a call record) and over recent calls (`twilio-caller
latency`: p50/p95).

Marks: `answered` (the call was picked up: its in-progress status or its first TwiML request,
whichever came first) and `first_audio` (the first answer was served); then per turn N (a
reply of the callee): `callee_end` (their last word: the reply's arrival minus the speech
timeout the provider waited), `agent_woke` (a waiting tool returned the reply), `agent_said`
(the agent's next action was queued) and `served` (the answer carrying it was served)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

ORDER = ("callee_end", "agent_woke", "agent_said", "served")  # a turn's marks, in order
SPANS = (("callee_end_to_agent_woke_ms", "callee_end", "agent_woke"),
         ("agent_woke_to_agent_said_ms", "agent_woke", "agent_said"),
         ("agent_said_to_served_ms", "agent_said", "served"))
FIGURES = ("pickup_to_first_audio_ms", *(name for name, _, _ in SPANS))


def payload(mark: str, turn: int, at: datetime) -> dict[str, Any]:
    return {"mark": mark, "turn": turn, "at_ms": round(at.timestamp() * 1000, 1)}


def of_call(marks: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A call's figures from its marks: milliseconds, None where a mark is missing."""
    first: dict[tuple[str, int], float] = {}
    for mark in marks:
        key = (str(mark.get("mark")), int(mark.get("turn", 0)))
        at = float(mark.get("at_ms", 0.0))
        first[key] = min(at, first.get(key, at))
    turns = sorted({turn for _, turn in first if turn > 0})
    return {
        "pickup_to_first_audio_ms": _span(first, ("answered", 0), ("first_audio", 0)),
        "turns": [{"turn": turn, **{name: _span(first, (start, turn), (end, turn)) for name, start, end in SPANS}}
                  for turn in turns],
    }


def over_calls(figures: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """p50/p95 (nearest rank) of each figure over calls' `latency` fields."""
    values: dict[str, list[float]] = {name: [] for name in FIGURES}
    for call in figures:
        if call.get("pickup_to_first_audio_ms") is not None:
            values["pickup_to_first_audio_ms"].append(float(call["pickup_to_first_audio_ms"]))
        for turn in call.get("turns", []):
            for name, _, _ in SPANS:
                if turn.get(name) is not None:
                    values[name].append(float(turn[name]))
    return {"calls": len(figures),
            "figures": {name: {"samples": len(found), "p50_ms": percentile(found, 50),
                               "p95_ms": percentile(found, 95)} for name, found in values.items()}}


def percentile(values: Sequence[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _span(first: Mapping[tuple[str, int], float], start: tuple[str, int], end: tuple[str, int]) -> float | None:
    if start not in first or end not in first:
        return None
    return round(max(0.0, first[end] - first[start]), 1)
