"""Every registered series (a metric's values at many periods in one pass) gives exactly the metric's own values."""
from __future__ import annotations

import datetime as dt
import math

import pytest

import revops.metrics  # noqa: F401  (registers every metric and series)
from revops.frames import default_as_of, empty_frames, open_frames
from revops.metrics.registry import SERIES, compute
from revops.metrics.trend import trend_points, values_at
from revops.period import Period

D = dt.date


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _periods(as_of: dt.date, fiscal_start: int = 1) -> list[Period]:
    """The trend's month ends, the previous period, a 30-day window, a leap day and a day before any data."""
    base = Period.ending(as_of, fiscal_start_month=fiscal_start)
    shifted = [base.shifted_to(end) for end in trend_points(base, 12)]
    return [*shifted, base, base.previous(), Period.ending(as_of, 30, fiscal_start),
            Period.ending(D(2024, 2, 29), 365, fiscal_start), Period.ending(D(2001, 1, 31), 90, fiscal_start)]


@pytest.fixture(scope="module")
def demo_frames(demo_file):
    return open_frames(demo_file, read_only=True)


@pytest.mark.parametrize("metric_id", sorted(SERIES))
def test_series_equals_the_metric_at_every_period(metric_id, demo_frames):
    """On the demo company: the series' value at each period is the metric's own value there."""
    periods = _periods(default_as_of(demo_frames, D(2030, 1, 1)), demo_frames.settings.fiscal_year_start_month)
    fast = values_at(metric_id, demo_frames, periods)
    slow = [compute(metric_id, demo_frames, p, details=False).value for p in periods]
    assert [_same(a, b) for a, b in zip(fast, slow)] == [True] * len(periods), (fast, slow)


@pytest.mark.parametrize("metric_id", sorted(SERIES))
def test_series_of_empty_data_is_empty_everywhere(metric_id):
    """No data at all: the series has no value at any period, like the metric."""
    periods = _periods(D(2024, 6, 30))
    fast = values_at(metric_id, empty_frames(), periods)
    slow = [compute(metric_id, empty_frames(), p, details=False).value for p in periods]
    assert fast == slow


def test_every_series_belongs_to_a_registered_scalar_metric():
    """A series is a fast path of a metric of the registry, never a second metric."""
    from revops.metrics.registry import BY_ID
    assert all(mid in BY_ID and BY_ID[mid].kind == "scalar" for mid in SERIES)


def test_breakdown_flag_says_which_scalar_metrics_give_a_table(demo_frames):
    """A card takes its value from the series unless the metric gives a breakdown table: the flag must be right."""
    from revops.metrics.registry import BY_ID
    period = Period.ending(default_as_of(demo_frames, D(2030, 1, 1)), fiscal_start_month=1)
    gives_table = {m.id for m in BY_ID.values() if m.kind == "scalar"
                   and compute(m.id, demo_frames, period, details=False).table is not None}
    assert gives_table == {m.id for m in BY_ID.values() if m.breakdown}
