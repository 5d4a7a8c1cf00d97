"""Latency figures from timing marks: per call, and p50/p95 over calls."""

from __future__ import annotations

from datetime import datetime, timezone

from twilio_caller import latency


def marks(*items: tuple[str, int, float]) -> list[dict]:
    return [{"mark": name, "turn": turn, "at_ms": at} for name, turn, at in items]


def test_a_calls_figures_take_the_first_of_each_mark_and_leave_gaps_as_null() -> None:
    figures = latency.of_call(marks(
        ("answered", 0, 1000.0), ("answered", 0, 1500.0), ("first_audio", 0, 1012.5),
        ("callee_end", 1, 5000.0), ("agent_woke", 1, 5004.0), ("agent_said", 1, 9004.0), ("served", 1, 9010.0),
        ("callee_end", 2, 12000.0), ("agent_woke", 2, 12003.0),
    ))
    assert figures == {"pickup_to_first_audio_ms": 12.5, "turns": [
        {"turn": 1, "callee_end_to_agent_woke_ms": 4.0, "agent_woke_to_agent_said_ms": 4000.0,
         "agent_said_to_served_ms": 6.0},
        {"turn": 2, "callee_end_to_agent_woke_ms": 3.0, "agent_woke_to_agent_said_ms": None,
         "agent_said_to_served_ms": None},
    ]}
    assert latency.of_call([]) == {"pickup_to_first_audio_ms": None, "turns": []}


def test_percentiles_over_calls_are_nearest_rank() -> None:
    calls = [{"pickup_to_first_audio_ms": float(ms), "turns": []} for ms in range(1, 101)]
    calls.append({"pickup_to_first_audio_ms": None, "turns": [{"turn": 1, "callee_end_to_agent_woke_ms": 7.0,
                                                                "agent_woke_to_agent_said_ms": None,
                                                                "agent_said_to_served_ms": 2.0}]})
    summary = latency.over_calls(calls)
    assert summary["calls"] == 101
    assert summary["figures"]["pickup_to_first_audio_ms"] == {"samples": 100, "p50_ms": 50.0, "p95_ms": 95.0}
    assert summary["figures"]["callee_end_to_agent_woke_ms"] == {"samples": 1, "p50_ms": 7.0, "p95_ms": 7.0}
    assert summary["figures"]["agent_woke_to_agent_said_ms"] == {"samples": 0, "p50_ms": None, "p95_ms": None}
    payload = latency.payload("served", 3, datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert payload == {"mark": "served", "turn": 3, "at_ms": 1767225600000.0}
