"""The config of a benchmark home: calls may be placed at any hour, as many as the run places,
and held calls are never closed for being unsteered while the bench thinks."""

from __future__ import annotations

CONFIG = """\
safety:
  calling_hours: "00:00-24:00"
  callee_hours: null
  max_concurrent_calls: {calls}
  max_calls_per_day: {calls}
  max_calls_per_contact_per_day: 10
  min_seconds_between_calls_to_contact: 0
  max_duration_seconds: 14400
webhook:
  port: 0
conversation:
  hold_budget_seconds: 10
  unsteered_limit_seconds: 3600
"""


def config_for(calls: int) -> str:
    return CONFIG.format(calls=calls)
