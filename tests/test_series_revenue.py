"""Series of the revenue metrics on hand-made subscriptions: golden values worked out by hand, equal to the metrics'."""
from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

import revops.metrics  # noqa: F401  (registers every metric and series)
from revops.frames import Frames, frames_from_tables
from revops.metrics.registry import SERIES, compute
from revops.metrics.series_revenue import arr_on_days
from revops.metrics.trend import values_at
from revops.period import Period
from revops.schema import Settings

D = dt.date
AS_OF = D(2024, 6, 30)
# The 365 days ending at as-of: 2023-07-02 .. 2024-06-30, month ends 2023-07-31 .. 2024-06-30.
PERIOD = Period.ending(AS_OF)


def _subs(*rows: tuple[str, dt.date, dt.date | None, float]) -> pl.DataFrame:
    """Subscriptions from (account, start, end, mrr) rows."""
    return pl.DataFrame(
        {"subscription_id": [f"s{i}" for i in range(len(rows))], "account_id": [r[0] for r in rows],
         "start_date": [r[1] for r in rows], "end_date": [r[2] for r in rows], "mrr": [r[3] for r in rows]},
        schema_overrides={"end_date": pl.Date})


def _company(spend: bool = True) -> Frames:
    """Four accounts around as-of 2024-06-30, gross margin 0.5, spend 1000 a month in 2023 and 2024 H1 (or none).

    a: 100 from 2023-01-01, ends on as-of (2024-06-30): churns at the as-of month end.
    b: 200 from 2023-01-01, + 50 from 2024-01-01: expands at 2024-01-31.
    c: 40 from 2023-01-01 to 2023-09-01 (churn at 2023-09-30), back with 60 from 2024-03-01 (reactivation).
    d: 35 from 2024-02-10: new at 2024-02-29.
    """
    subs = _subs(("a", D(2023, 1, 1), AS_OF, 100.0), ("b", D(2023, 1, 1), None, 200.0),
                 ("b", D(2024, 1, 1), None, 50.0), ("c", D(2023, 1, 1), D(2023, 9, 1), 40.0),
                 ("c", D(2024, 3, 1), None, 60.0), ("d", D(2024, 2, 10), None, 35.0))
    months = [D(2023, m, 1) for m in range(1, 13)] + [D(2024, m, 1) for m in range(1, 7)]
    tables = {"subscriptions": subs}
    if spend:
        tables["spend"] = pl.DataFrame({"month": months, "amount": [1000.0] * len(months),
                                        "category": ["marketing"] * len(months)})
    return frames_from_tables(tables, Settings(gross_margin=0.5))


def _series(metric_id: str, frames: Frames, periods: list[Period]) -> list[float | None]:
    """The series' values, checked against the metric's own value at every period."""
    assert metric_id in SERIES
    fast = values_at(metric_id, frames, periods)
    slow = [compute(metric_id, frames, p, details=False).value for p in periods]
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12))
    return fast


def test_subscription_ending_on_as_of_is_not_counted_that_day():
    """ARR the day before as-of counts a (it ends on as-of); ARR at as-of does not."""
    frames = _company()
    got = _series("arr", frames, [Period.ending(AS_OF - dt.timedelta(days=1)), PERIOD])
    # 2024-06-29: a 100 + b 250 + c 60 + d 35 = 445 -> 12 × 445 = 5340; 2024-06-30: 445 − 100 = 345 -> 4140
    assert got == [5340.0, 4140.0]


def test_retention_counts_a_returning_account_and_not_the_one_ending_on_as_of():
    """NRR and GRR at as-of: base a, b, c (paying 2023-06-30); a ended on as-of, c came back, d is not in the base."""
    frames = _company()
    # ARR then: a 1200, b 2400, c 480 = 4080. Now: a 0, b 3000, c 720 (back with 60).
    assert _series("nrr", frames, [PERIOD]) == [pytest.approx((0 + 3000 + 720) / 4080, rel=1e-12)]
    # kept: min(0, 1200) + min(3000, 2400) + min(720, 480) = 2880
    assert _series("grr", frames, [PERIOD]) == [pytest.approx(2880 / 4080, rel=1e-12)]


def test_leap_day_as_of_looks_back_to_28_february():
    """At as-of 2024-02-29 the base is who paid on 2023-02-28, not 365 days earlier (2023-03-01)."""
    subs = _subs(("e", D(2023, 2, 28), None, 10.0), ("e", D(2024, 1, 15), None, 5.0),
                 ("f", D(2023, 3, 1), None, 20.0))
    frames = frames_from_tables({"subscriptions": subs})
    leap = Period.ending(D(2024, 2, 29))
    # base: e only (f starts 2023-03-01): NRR = 12 × 15 ÷ (12 × 10) = 1.5 (with f it would be 35 ÷ 30)
    assert _series("nrr", frames, [leap]) == [1.5]
    assert _series("grr", frames, [leap]) == [1.0]  # min(180, 120) ÷ 120
    assert _series("arr", frames, [leap]) == [420.0]  # 12 × (10 + 5 + 20)


def test_movements_in_the_window_add_up_to_net_new_arr_and_expansion():
    """Net new ARR and expansion rate over the window of the churn, return and new account."""
    frames = _company()
    # movements: c churn 40 (2023-09-30), b expansion 50, d new 35, c reactivation 60, a churn 100 (2024-06-30)
    # net: −40 + 50 + 35 + 60 − 100 = 5 -> 12 × 5 = 60
    assert _series("net_new_arr", frames, [PERIOD]) == [60.0]
    # 12 × 50 ÷ ARR on 2023-07-01 (a 100 + b 200 + c 40 = 340 -> 4080)
    assert _series("expansion_rate", frames, [PERIOD]) == [pytest.approx(600 / 4080, rel=1e-12)]


def test_window_without_a_month_end_has_no_net_new_arr():
    """A 14-day window inside June 2024 contains no month end: no value, like the metric."""
    frames = _company()
    assert _series("net_new_arr", frames, [Period(D(2024, 6, 15), D(2024, 6, 2), D(2024, 6, 15))]) == [None]


def test_ltv_to_cac_and_magic_number_from_hand_counts():
    """LTV:CAC and the magic number at as-of, every part counted by hand."""
    frames = _company()
    # active at as-of: b 3000, c 720, d 420 -> ARPA = 4140 ÷ 12 ÷ 3 = 115
    # base a, b, c; churned a -> monthly churn 1 ÷ 3 ÷ 12 = 1/36; LTV = 115 × 0.5 × 36 = 2070
    # spend with month start in 2023-07-02 .. 2024-06-30: Aug 2023 .. Jun 2024 = 11 × 1000; new: d -> CAC 11000
    assert _series("ltv_to_cac", frames, [PERIOD]) == [pytest.approx(2070 / 11000, rel=1e-12)]
    # last closed quarter Q2 2024 (ends on as-of), before it Q1 2024 (spend 3000)
    # ARR 2024-06-30 = 4140; 2024-03-31: a 100 + b 250 + c 60 + d 35 = 445 -> 5340; (4140 − 5340) ÷ 3000 = −0.4
    assert _series("magic_number", frames, [PERIOD]) == [pytest.approx(-0.4, rel=1e-12)]


def test_no_spend_leaves_ltv_to_cac_and_magic_number_empty():
    """Without spend, CAC and the magic number's denominator are unknown: no value at any point."""
    frames = _company(spend=False)
    periods = [Period.ending(D(2024, m, 28)) for m in range(1, 7)] + [PERIOD]
    assert _series("ltv_to_cac", frames, periods) == [None] * len(periods)
    assert _series("magic_number", frames, periods) == [None] * len(periods)


def test_trend_of_the_company_equals_the_metrics_month_by_month():
    """Every revenue series at the 28th of each month of 2023-01 .. 2024-06 equals the metric there."""
    frames = _company()
    ends = [D(2023, m, 28) for m in range(1, 13)] + [D(2024, m, 28) for m in range(1, 7)]
    periods = [PERIOD.shifted_to(end) for end in ends]
    for metric_id in ("arr", "nrr", "grr", "ltv_to_cac", "magic_number", "net_new_arr", "expansion_rate"):
        _series(metric_id, frames, periods)


def test_arr_on_days_with_nothing_active_is_zero():
    """Days before the first start and after every end have ARR 0; the days between count what is active."""
    subs = frames_from_tables({"subscriptions": _subs(("a", D(2024, 1, 10), D(2024, 2, 1), 7.0))}).subscriptions
    got = arr_on_days(subs, [D(2024, 2, 1), D(2024, 1, 9), D(2024, 1, 10), D(2024, 1, 31)])
    assert got == {D(2024, 1, 9): 0.0, D(2024, 1, 10): 84.0, D(2024, 1, 31): 84.0, D(2024, 2, 1): 0.0}  # 12 × 7


def test_time_to_value_counts_first_value_on_the_windows_last_day_only():
    """Median over customers whose first value falls in the window (the last day's evening included); a
    customer without a signature time or won deal is left out."""
    dtm = dt.datetime
    life = pl.DataFrame({
        "account_id": ["p", "q", "r", "s"],
        "won_at": [dtm(2024, 6, 1), dtm(2024, 6, 10, 12), dtm(2024, 6, 20), None],
        "first_value_at": [dtm(2024, 6, 11), dtm(2024, 6, 30, 18), dtm(2024, 7, 1), dtm(2024, 6, 15)],
    })
    frames = frames_from_tables({"lifecycle": life})
    june = Period(D(2024, 6, 30), D(2024, 6, 1), D(2024, 6, 30))
    # p: 10 days; q: 20 days 6 hours = 20.25; r falls on 1 July (outside); s has no signature: median(10, 20.25)
    assert _series("time_to_value_days", frames, [june]) == [pytest.approx((10 + 20.25) / 2, rel=1e-12)]
    # the 30 days to 31 July: r only, 11 days
    assert _series("time_to_value_days", frames, [Period.ending(D(2024, 7, 31), 31)]) == [11.0]
    # nobody reached first value in May
    assert _series("time_to_value_days", frames, [Period.ending(D(2024, 5, 31), 31)]) == [None]
