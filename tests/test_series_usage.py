"""The usage metrics' series (revops/metrics/series_usage.py) on tiny hand-made tables: edges the demo misses."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops.frames import Frames, frames_from_tables
from revops.metrics import compute
from revops.metrics.trend import values_at
from revops.period import Period
from tests.tables import subs, usage

D = dt.date
AS_OF = D(2024, 6, 30)
# At AS_OF: the 28 days to as-of are 3–30 June, the 28 before them 6 May – 2 June (5 May is outside both),
# the 30 days of adoption 1–30 June.
USAGE_METRICS = ("engagement_score", "at_risk_arr", "feature_adoption", "usage_trend")


def frames(subscriptions: pl.DataFrame, use: pl.DataFrame | None = None,
           lifecycle: pl.DataFrame | None = None) -> Frames:
    tables = {"subscriptions": subscriptions}
    if use is not None:
        tables["usage"] = use
    if lifecycle is not None:
        tables["lifecycle"] = lifecycle
    return frames_from_tables(tables)


def series_and_metric(metric_id: str, f: Frames, periods: list[Period]) -> tuple[list, list]:
    """The series' values and the metric's own value at each period."""
    return values_at(metric_id, f, periods), [compute(metric_id, f, p, details=False).value for p in periods]


def at(*days: dt.date) -> list[Period]:
    return [Period.ending(d, 365) for d in days]


def test_engagement_counts_usage_on_the_window_edges_and_leaves_out_a_subscription_ending_on_as_of():
    """X scores 25 + 25/28, Y (no usage) 0; Z's subscription ends on as-of, so Z is not active: mean (25 + 25/28) / 2.

    X: used feature a on 3 June (27 days ago, first day of the 28): recency 1 − 27/28 = 1/28, one week with use
    (27 // 7 = 3): frequency 1/4, features {a} of {a, b}: breadth 1/2, activity 2 now against 4 on 6 May (first
    day of the 28 before; the 100 users of 5 May are outside): trend ½ × 2/4 = 1/4.
    25 × (1/28 + 1/4 + 1/2 + 1/4) = 25 + 25/28.
    """
    f = frames(subs(("X", 100.0, None), ("Y", 10.0, None), ("Z", 50.0, AS_OF)),
               usage(("X", D(2024, 5, 5), "b", 100, 1), ("X", D(2024, 5, 6), "b", 4, 1),
                     ("X", D(2024, 6, 3), "a", 2, 5), ("Z", AS_OF, "a", 10, 10)))
    fast, slow = series_and_metric("engagement_score", f, at(AS_OF))
    assert fast == slow == [pytest.approx((25 + 25 / 28) / 2, rel=1e-12)]


def test_at_risk_leaves_out_usage_before_the_window_and_a_subscription_ending_on_as_of():
    """Only W is at risk: ARR 12 × 30 = 360.

    X: 3 users now (3 June) against 4 on 6 May: 3 ≥ 0.7 × 4 = 2.8, not down (the 100 users of 5 May are outside
    the 28 days before). W: 1 user now (30 June) against 4 (6 May): 1 < 2.8, down. Z used 5 on 10 May and none
    since, but its subscription ends on as-of: not active.
    """
    f = frames(subs(("X", 100.0, None), ("W", 30.0, None), ("Z", 50.0, AS_OF)),
               usage(("X", D(2024, 5, 5), "a", 100, 1), ("X", D(2024, 5, 6), "a", 4, 1),
                     ("W", D(2024, 5, 6), "a", 4, 1), ("Z", D(2024, 5, 10), "a", 5, 1),
                     ("X", D(2024, 6, 3), "a", 3, 1), ("W", AS_OF, "a", 1, 1)))
    fast, slow = series_and_metric("at_risk_arr", f, at(AS_OF))
    assert fast == slow == [360.0]


def test_usage_trend_counts_active_users_on_the_window_edges_only():
    """Now: 3 (3 June, first day) + 1 (30 June) = 4 users; before: 4 (6 May, first day) + 2 (2 June, last day) = 6;
    5 May (100) is outside, a row without users (10 June) counts nothing. 4 ÷ 6 − 1 = −1/3."""
    f = frames(subs(("X", 100.0, None)),
               usage(("X", D(2024, 5, 5), "a", 100, 1), ("X", D(2024, 5, 6), "a", 4, 1),
                     ("X", D(2024, 6, 2), "b", 2, 1), ("X", D(2024, 6, 3), "a", 3, 1),
                     ("X", D(2024, 6, 10), "a", None, 5), ("X", AS_OF, "b", 1, 1)))
    fast, slow = series_and_metric("usage_trend", f, at(AS_OF))
    assert fast == slow == [pytest.approx(4 / 6 - 1, rel=1e-12)]


def test_feature_adoption_at_a_leap_day():
    """As of 29 Feb 2024 the 30 days are 31 Jan – 29 Feb: a used by X (31 Jan) of X, Y: 1/2; b by nobody
    (Y's use on 30 Jan is outside, its row of 29 Feb has no users and no events): 0/2. Mean (1/2 + 0) / 2 = 1/4."""
    leap = D(2024, 2, 29)
    f = frames(subs(("X", 100.0, None), ("Y", 10.0, None)),
               usage(("Y", D(2024, 1, 30), "b", 3, 3), ("X", D(2024, 1, 31), "a", 1, 0),
                     ("Y", leap, "b", 0, 0)))
    fast, slow = series_and_metric("feature_adoption", f, at(leap))
    assert fast == slow == [0.25]


def test_without_usage_engagement_and_adoption_are_empty_and_risk_comes_from_health():
    """No usage rows: no engagement, adoption or usage trend at any as-of; X's health 40 < 50 puts 12 × 100 = 1200 at
    risk."""
    life = pl.DataFrame({"account_id": ["X", "Y"], "health_score": [40.0, 90.0]})
    f = frames(subs(("X", 100.0, None), ("Y", 10.0, None)), lifecycle=life)
    periods = at(D(2024, 4, 30), D(2024, 5, 31), AS_OF)
    assert series_and_metric("engagement_score", f, periods) == ([None] * 3, [None] * 3)
    assert series_and_metric("feature_adoption", f, periods) == ([None] * 3, [None] * 3)
    assert series_and_metric("usage_trend", f, periods) == ([None] * 3, [None] * 3)
    assert series_and_metric("at_risk_arr", f, periods) == ([1200.0] * 3, [1200.0] * 3)


def _mixed() -> Frames:
    """Four accounts over half a year: daily and weekly rows, a missing feature, missing users (events count as
    activity then), rows without use, an account ending mid-way and one starting late."""
    days = [D(2024, 1, 1) + dt.timedelta(days=n) for n in range(0, 190, 3)]
    rows = []
    for n, d in enumerate(days):
        rows.append(("A", d, ["a", "b", "c"][n % 3], n % 5, n))
        if n % 2:
            rows.append(("B", d, None, None, n % 4))
        if n % 7 < 3:
            rows.append(("C", d, "b", 2, 0))
        rows.append(("D", d, "c", 0 if n % 4 else 3, 0))
    s = pl.concat([subs(("A", 100.0, None), ("B", 20.0, None), ("C", 30.0, D(2024, 4, 15)), ("C", 5.0, None)),
                   subs(("D", 70.0, None)).with_columns(start_date=pl.lit(D(2024, 3, 10)),
                                                        subscription_id=pl.lit("d"))])
    life = pl.DataFrame({"account_id": ["A", "B", "C", "D"], "health_score": [80.0, 45.0, None, 90.0],
                         "renewal_date": [D(2024, 7, 20), None, D(2024, 5, 1), D(2024, 9, 1)]})
    return frames(s, usage(*rows), life)


@pytest.mark.parametrize("metric_id", USAGE_METRICS)
def test_series_equals_the_metric_at_month_ends_the_previous_period_and_odd_days(metric_id):
    """On mixed hand-made usage: the series' value at each month end, a leap day, the day a subscription ends and
    the previous period is the metric's own value there, exactly."""
    f = _mixed()
    month_ends = [D(2024, m, 1) - dt.timedelta(days=1) for m in range(2, 13)]
    base = Period.ending(D(2024, 6, 30), 365)
    periods = [*[base.shifted_to(d) for d in month_ends], base.previous(), Period.ending(D(2024, 2, 29), 30),
               Period.ending(D(2024, 4, 15), 90), Period.ending(D(2024, 4, 14), 90)]
    fast, slow = series_and_metric(metric_id, f, periods)
    assert fast == slow
    assert any(v not in (None, 0.0) for v in fast)  # the data reaches the metric


@pytest.mark.parametrize("metric_id", USAGE_METRICS)
def test_series_with_more_features_than_bits_computes_each_period(metric_id):
    """64 features (beyond the 63 bits of a tally): the series falls back to the metric at each period."""
    rows = [("X", D(2024, 6, 1) + dt.timedelta(days=n % 28), f"f{n}", 1 + n % 3, 1) for n in range(64)]
    f = frames(subs(("X", 100.0, None), ("Y", 10.0, None)), usage(*rows))
    fast, slow = series_and_metric(metric_id, f, at(D(2024, 5, 31), AS_OF))
    assert fast == slow


def test_at_risk_sums_an_accounts_subscriptions_as_the_metric_does():
    """X has three subscriptions of 0.1, 0.2 and 0.3 and health 40: ARR 12 × 0.6, to the last bit the float the metric
    gets (added in another order, 0.1 + 0.2 + 0.3 is another float: (0.1 + 0.2) + 0.3 ≠ 0.1 + (0.2 + 0.3))."""
    life = pl.DataFrame({"account_id": ["X"], "health_score": [40.0]})
    f = frames(subs(("X", 0.1, None), ("Y", 5.0, None), ("X", 0.2, None), ("X", 0.3, None)), lifecycle=life)
    fast, slow = series_and_metric("at_risk_arr", f, at(AS_OF))
    assert fast == slow == [pytest.approx(12 * 0.6, rel=1e-12)]
    assert (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)


@pytest.mark.parametrize("metric_id", USAGE_METRICS)
def test_series_equals_the_metric_on_usage_out_of_date_and_account_order(metric_id):
    """The mixed usage shuffled (an account's day split into several runs, dates out of order): the day tallies
    add the runs up, and each value is still the metric's own."""
    f = _mixed()
    f = frames(f.subscriptions, f.usage.sample(fraction=1.0, shuffle=True, seed=7), f.lifecycle)
    base = Period.ending(D(2024, 6, 30), 365)
    periods = [base.shifted_to(D(2024, m, 1) - dt.timedelta(days=1)) for m in range(2, 9)]
    fast, slow = series_and_metric(metric_id, f, periods)
    assert fast == slow


def test_day_tallies_of_a_feature_used_twice_in_a_day_set_its_bit_once():
    """X on 3 June: two rows of feature a (2 and 3 users) and one of b without use; Y on 3 June: b with 4 events.
    Features a, b: bits 1, 2. X: activity 2 + 3 + 0 = 5, users 5, mask a = 1 (a's bits summed would give 2, b's);
    Y: activity 4 events (no users), users 0, mask b = 2."""
    from revops.metrics.series_usage import _daily
    rows = [("X", D(2024, 6, 3), "a", 2, 1), ("X", D(2024, 6, 3), "a", 3, 1), ("X", D(2024, 6, 3), "b", 0, 0),
            ("Y", D(2024, 6, 3), "b", None, 4)]
    f = frames(subs(("X", 100.0, None), ("Y", 10.0, None)), usage(*rows))
    days = _daily(f, D(2024, 6, 1), AS_OF).sort("code")
    assert days.select("date", "activity", "users", "mask", "features").rows() == [
        (D(2024, 6, 3), 5, 5, 1, 1), (D(2024, 6, 3), 4, 0, 2, 2)]


@pytest.mark.parametrize("shuffled", [False, True])
def test_feature_adoption_without_rows_gives_the_table_and_value_of_the_rows_path(shuffled):
    """feature_adoption without drill-down rows takes its table from the day tallies: at every month end, a leap
    day and a day a subscription ends, the same table, value and reason as the path that builds the rows."""
    f = _mixed()
    if shuffled:
        f = frames(f.subscriptions, f.usage.sample(fraction=1.0, shuffle=True, seed=3), f.lifecycle)
    days = [D(2024, m, 1) - dt.timedelta(days=1) for m in range(1, 13)] + [D(2024, 2, 29), D(2024, 4, 15)]
    for d in days:
        period = Period.ending(d, 90)
        fast, slow = compute("feature_adoption", f, period, details=False), compute("feature_adoption", f, period)
        assert (fast.value, fast.reason) == (slow.value, slow.reason)
        assert fast.table.equals(slow.table)
        assert fast.detail is None


def test_feature_adoption_without_rows_and_without_active_accounts_says_why():
    """Usage of X in June but X's only subscription ended in May: no active account at 30 June, both paths say so
    and give a table of feature a with 0 of 0 accounts and no share."""
    f = frames(subs(("X", 100.0, D(2024, 5, 31))), usage(("X", D(2024, 6, 3), "a", 2, 1)))
    period = at(AS_OF)[0]
    fast, slow = compute("feature_adoption", f, period, details=False), compute("feature_adoption", f, period)
    assert (fast.value, fast.reason) == (slow.value, slow.reason) == (None, "No active accounts at as-of")
    assert fast.table.equals(slow.table)
    assert fast.table.rows() == [("a", 0, 0, None)]
