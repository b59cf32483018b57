"""A metric over time: month-end points with windows of the same length, and the period before."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.frames import frames_from_tables
from revops.metrics.trend import compare, trend, trend_with, trend_points
from revops.period import Period

D = dt.date


def test_trend_points_are_the_last_month_ends_up_to_as_of():
    """As of 15 Jun the last three month ends are Mar, Apr, May; as of 30 Jun the 30th itself is one."""
    assert trend_points(Period.ending(D(2024, 6, 15)), 3) == [D(2024, 3, 31), D(2024, 4, 30), D(2024, 5, 31)]
    assert trend_points(Period.ending(D(2024, 6, 30)), 3) == [D(2024, 4, 30), D(2024, 5, 31), D(2024, 6, 30)]


def test_trend_evaluates_the_metric_at_each_month_end():
    """ARR: a (100/month from 1 Jan) alone at 31 Mar = 1200; with b (50 from 15 Apr) 1800 after."""
    subs = pl.DataFrame({"subscription_id": ["1", "2"], "account_id": ["a", "b"],
                         "start_date": [D(2024, 1, 1), D(2024, 4, 15)], "end_date": [None, None],
                         "mrr": [100.0, 50.0]})
    got = trend("arr", frames_from_tables({"subscriptions": subs}), Period.ending(D(2024, 6, 15)), points=3)
    assert got.rows() == [(D(2024, 3, 31), 1200.0), (D(2024, 4, 30), 1800.0), (D(2024, 5, 31), 1800.0)]


def test_trend_windows_keep_the_period_length():
    """A 30-day period: April's point counts 1–30 Apr (1 won, 1 lost), May's 2–31 May (1 won); 1 May is in neither."""
    opps = pl.DataFrame({"opportunity_id": ["a", "b", "c", "d"],
                         "stage": ["Closed Won", "Closed Lost", "Closed Won", "Closed Won"],
                         "close_date": [D(2024, 4, 1), D(2024, 4, 30), D(2024, 5, 1), D(2024, 5, 2)]})
    got = trend("win_rate", frames_from_tables({"opportunities": opps}), Period.ending(D(2024, 6, 15), 30), points=2)
    assert got.rows() == [(D(2024, 4, 30), 0.5), (D(2024, 5, 31), 1.0)]


def test_trend_of_an_empty_metric_has_null_values():
    """No deals: every point is null, never 0."""
    got = trend("win_rate", frames_from_tables({}), Period.ending(D(2024, 6, 15)), points=2)
    assert got["value"].to_list() == [None, None]
    assert got.schema == pl.Schema({"as_of": pl.Date, "value": pl.Float64})


def test_compare_gives_the_period_and_the_one_of_same_length_before():
    """1 Apr – 30 Jun against 1 Jan – 31 Mar 2024 (91 days each): pipeline created 300 against 100."""
    opps = pl.DataFrame({"opportunity_id": ["a", "b", "c"], "stage": ["Prospecting"] * 3,
                         "created_at": [D(2024, 2, 1), D(2024, 5, 1), D(2023, 12, 31)],
                         "amount": [100.0, 300.0, 999.0]})
    now, before = compare("pipeline_created", frames_from_tables({"opportunities": opps}),
                          Period(D(2024, 6, 30), D(2024, 4, 1), D(2024, 6, 30)))
    assert (now.value, before.value) == (300.0, 100.0)


def test_trend_with_give_the_trend_and_the_previous_period_value():
    """ARR as of 15 Jun, 30-day periods: points 30 Apr and 31 May (a and b: 12 × 150 = 1800); the previous
    period (17 Apr – 16 May) ends with both active too: 1800."""
    subs = pl.DataFrame({"subscription_id": ["1", "2"], "account_id": ["a", "b"],
                         "start_date": [D(2024, 1, 1), D(2024, 4, 15)], "end_date": [None, None],
                         "mrr": [100.0, 50.0]})
    frames = frames_from_tables({"subscriptions": subs})
    period = Period.ending(D(2024, 6, 15), 30)
    points, others = trend_with("arr", frames, period, 2, [period.previous()])
    assert points.rows() == [(D(2024, 4, 30), 1800.0), (D(2024, 5, 31), 1800.0)]
    assert others == [1800.0]
