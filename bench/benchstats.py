"""What the benchmarks print of their samples: nearest-rank percentiles, as `p50_ms`-style keys."""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def percentiles(values: list[float], unit: str, ps: Iterable[int], digits: int) -> dict[str, float]:
    """{"p50_<unit>": …} for each p in `ps`, rounded to `digits`; nothing without samples."""
    return {f"p{p}_{unit}": round(percentile(values, p), digits) for p in ps} if values else {}
