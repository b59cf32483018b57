"""A metric over time: its value at past month ends, and the current period against the one before."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.frames import Frames
from revops.metrics.registry import SERIES, MetricResult, compute, values_only
from revops.period import Period, add_months, month_ends


def trend_points(period: Period, points: int = 12) -> list[dt.date]:
    """The last `points` month ends on or before as_of, oldest first."""
    return month_ends(add_months(period.as_of, -points), period.as_of)[-points:] if points > 0 else []


def trend(metric_id: str, frames: Frames, period: Period, points: int = 12) -> pl.DataFrame:
    """The metric at each of the last `points` month ends up to as_of, each window as long as the period's.

    Columns as_of, value (null where the metric is empty at that point).
    """
    ends = trend_points(period, points)
    return _points(ends, values_at(metric_id, frames, [period.shifted_to(end) for end in ends]))


def trend_with(metric_id: str, frames: Frames, period: Period, points: int,
               others: list[Period]) -> tuple[pl.DataFrame, list[float | None]]:
    """trend() and the metric's values over `others` (say the previous period), worked out together: one pass
    for a metric with a series."""
    ends = trend_points(period, points)
    values = values_at(metric_id, frames, [*(period.shifted_to(end) for end in ends), *others])
    return _points(ends, values[:len(ends)]), values[len(ends):]


def _points(ends: list[dt.date], values: list[float | None]) -> pl.DataFrame:
    return pl.DataFrame({"as_of": ends, "value": values}, schema={"as_of": pl.Date, "value": pl.Float64})


def values_at(metric_id: str, frames: Frames, periods: list[Period]) -> list[float | None]:
    """The metric's value at each period: in one pass when it registered a series, else one period at a time."""
    fast = SERIES.get(metric_id)
    if fast is not None and periods:
        with values_only():
            return fast(frames, periods)
    return [compute(metric_id, frames, p, details=False).value for p in periods]


def compare(metric_id: str, frames: Frames, period: Period) -> tuple[MetricResult, MetricResult]:
    """The metric for the period (with its drill-down rows) and for the period of the same length just before it."""
    return compute(metric_id, frames, period), compute(metric_id, frames, period.previous(), details=False)


__all__ = ["compare", "trend", "trend_with", "trend_points", "values_at"]
