"""Small statistics helpers shared by the workloads, the load generator and the report."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (no interpolation: a p99 is a value
    that was observed)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(values: Iterable[float], missing: int = 0) -> dict[str, Any]:
    """count, p50, p90, p99, max, mean of `values`; `missing` samples (never completed) count as
    infinitely late, so an overloaded run cannot report a flattering p99."""
    ordered = sorted(values) + [math.inf] * missing
    finite = [v for v in ordered if math.isfinite(v)]
    return {
        "count": len(ordered),
        "missing": missing,
        "p50": _clean(percentile(ordered, 0.50)),
        "p90": _clean(percentile(ordered, 0.90)),
        "p99": _clean(percentile(ordered, 0.99)),
        "max": _clean(ordered[-1]) if ordered else None,
        "mean": (sum(finite) / len(finite)) if finite else None,
    }


def _clean(value: float) -> float | str | None:
    """JSON has no infinity or NaN."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf"
    return value


def run_fast(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is installed (it is, with uvicorn[standard]): the helper
    processes should take as little of the 2 shared cores as they can."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
