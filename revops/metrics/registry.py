"""The one registry of metrics (METRICS.md): each declared once, read by pages, CLI and tests."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Literal

import polars as pl

from revops.frames import Frames
from revops.memo import derived
from revops.period import Period

Tier = Literal["north_star", "operational", "diagnostic", "leading"]
TIERS: dict[str, str] = {
    "north_star": "North Star",
    "operational": "Operational",
    "diagnostic": "Diagnostic",
    "leading": "Leading",
}


@dataclass(frozen=True)
class MetricResult:
    """A metric's value, or None with the reason; the rows behind it; an optional breakdown table."""

    value: float | None
    reason: str | None = None
    detail: pl.DataFrame | None = None
    table: pl.DataFrame | None = None

    @classmethod
    def empty(cls, reason: str, detail: pl.DataFrame | None = None) -> "MetricResult":
        """No value, and why."""
        return cls(None, reason, detail)


MetricFn = Callable[[Frames, Period], MetricResult]


@dataclass(frozen=True)
class Metric:
    """A registered metric: its public id, tier, label, unit, direction, definition and function."""

    id: str
    tier: Tier
    label: str
    unit: str
    higher_is_better: bool
    definition: str
    compute: MetricFn
    kind: Literal["scalar", "table"] = "scalar"
    breakdown: bool = False  # a scalar that also gives a table (per feature, per table) beside its value


REGISTRY: list[Metric] = []
BY_ID: dict[str, Metric] = {}


def metric(id: str, tier: Tier, label: str, unit: str, definition: str, *, higher_is_better: bool = True,
           kind: Literal["scalar", "table"] = "scalar", breakdown: bool = False) -> Callable[[MetricFn], MetricFn]:
    """Register the decorated function as the one way to compute metric `id`."""
    def register(fn: MetricFn) -> MetricFn:
        if id in BY_ID:
            raise ValueError(f"metric {id!r} registered twice")
        m = Metric(id, tier, label, unit, higher_is_better, " ".join(definition.split()), fn, kind, breakdown)
        REGISTRY.append(m)
        BY_ID[id] = m
        return fn
    return register


# Fast paths: a metric's values at many periods in one pass (a trend line's dozen points), registered
# beside the metric's own function. The function stays the definition: a series must give exactly its
# values (tests/test_metric_series.py checks every registered one against it).
SeriesFn = Callable[[Frames, list[Period]], list[float | None]]
SERIES: dict[str, SeriesFn] = {}


def series(id: str) -> Callable[[SeriesFn], SeriesFn]:
    """Register the decorated function as metric `id`'s values at many periods at once."""
    def register(fn: SeriesFn) -> SeriesFn:
        if id in SERIES:
            raise ValueError(f"series of {id!r} registered twice")
        SERIES[id] = fn
        return fn
    return register


def by_tier(tier: str) -> list[Metric]:
    """Metrics of one tier, in declaration order."""
    return [m for m in REGISTRY if m.tier == tier]


def scalar_metrics() -> list[Metric]:
    """Every scalar metric (the ones the CLI's JSON reports as numbers)."""
    return [m for m in REGISTRY if m.kind == "scalar"]


# Whether metric functions build their drill-down rows. A trend point or the previous period's value
# is only ever shown as a number, so it is computed without them (see values_only).
_DETAILS: ContextVar[bool] = ContextVar("revops_metric_details", default=True)


def details_wanted() -> bool:
    """Whether the metric being computed should build its drill-down rows (MetricResult.detail)."""
    return _DETAILS.get()


@contextmanager
def values_only() -> Iterator[None]:
    """Metrics computed inside this block skip their drill-down rows (detail is None); values are unchanged."""
    token = _DETAILS.set(False)
    try:
        yield
    finally:
        _DETAILS.reset(token)


def compute(metric_id: str, frames: Frames, period: Period, *, details: bool = True) -> MetricResult:
    """Compute one metric (without its drill-down rows when details=False).

    A value without rows is small and asked again and again (a trend point is another metric's
    input, the previous period of one card is a point of another's trend), so it is kept per frames.
    """
    if details:
        return BY_ID[metric_id].compute(frames, period)

    def value() -> MetricResult:
        with values_only():
            result = BY_ID[metric_id].compute(frames, period)
        # Some metrics keep the rows their value came from as detail anyway (movements, scores per
        # account): nobody reads a value-only result's rows, and kept per trend point they add up to
        # hundreds of megabytes at a million deals.
        return replace(result, detail=None) if result.detail is not None else result
    return derived(frames, "metric_value", value, key=(metric_id, period), limit=2048)
