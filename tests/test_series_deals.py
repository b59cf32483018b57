"""Series of the deal and lead metrics (series_deals, series_leads) on tiny hand-made tables: each value worked out
here, and equal to the metric's own value at the same period."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import revops.metrics  # noqa: F401  (registers every metric and series)
from revops.frames import Frames, frames_from_tables
from revops.metrics.registry import SERIES, compute
from revops.metrics.trend import values_at
from revops.period import Period

D, T = dt.date, dt.datetime

JAN = Period(D(2024, 1, 31), D(2024, 1, 1), D(2024, 1, 31))
FEB = Period(D(2024, 2, 29), D(2024, 2, 1), D(2024, 2, 29))   # a leap-day as-of
MAR = Period(D(2024, 3, 31), D(2024, 3, 1), D(2024, 3, 31))   # nothing closes, no lead is created
JAN_SEEN_IN_FEB = Period(D(2024, 2, 29), D(2024, 1, 1), D(2024, 1, 31))  # window of January, as-of 29 Feb
APR = Period(D(2024, 4, 30), D(2024, 4, 1), D(2024, 4, 30))   # a quarter without a target
PERIODS = [JAN, FEB, MAR, JAN_SEEN_IN_FEB]


def deals(*rows: tuple) -> pl.DataFrame:
    """Opportunities from (id, stage, amount, created_at, close_date, probability) rows."""
    return pl.DataFrame(
        {"opportunity_id": [r[0] for r in rows], "stage": [r[1] for r in rows], "amount": [r[2] for r in rows],
         "created_at": [r[3] for r in rows], "close_date": [r[4] for r in rows], "probability": [r[5] for r in rows]},
        schema={"opportunity_id": pl.String, "stage": pl.String, "amount": pl.Float64, "created_at": pl.Date,
                "close_date": pl.Date, "probability": pl.Float64},
    )


DEALS = deals(  # in no order of dates
    ("c", "Closed Won", 500.0, D(2023, 12, 1), D(2024, 2, 29), 0.6),    # closes on the leap day: 31+31+28 = 90 days
    ("e", "Proposal", 50.0, None, D(2024, 6, 30), 0.2),                 # open, creation unknown: open since ever
    ("a", "Closed Won", 100.0, D(2024, 1, 10), D(2024, 1, 31), 1.0),    # closes on JAN's last day: 21-day cycle
    ("f", "Closed Won", 999.0, D(2024, 1, 1), None, 1.0),               # won without a close date: never counted
    ("b", "Closed Lost", 300.0, D(2024, 1, 5), D(2024, 2, 1), 0.4),     # closes on FEB's first day
    ("d", "Proposal", 1000.0, D(2024, 2, 15), D(2024, 4, 30), 0.5),     # open, expected after the quarter
)
Q1_TARGET = pl.DataFrame({"period_start": [D(2024, 1, 1)], "period_end": [D(2024, 3, 31)], "target_amount": [1000.0]})


def deal_frames(target: float = 1000.0) -> Frames:
    return frames_from_tables({"opportunities": DEALS,
                               "targets": Q1_TARGET.with_columns(target_amount=pl.lit(target))})


def both(metric_id: str, f: Frames, periods: list[Period]) -> tuple[list[float | None], list[float | None]]:
    """The series' values and the metric's own values at the periods."""
    assert metric_id in SERIES
    return values_at(metric_id, f, periods), [compute(metric_id, f, p, details=False).value for p in periods]


def close_to(values: list[float | None], expected: list[float | None]) -> bool:
    """Empty exactly where expected, equal to 12 digits elsewhere."""
    return len(values) == len(expected) and all(
        (v is None) == (e is None) and (e is None or v == pytest.approx(e, rel=1e-12))
        for v, e in zip(values, expected))


def check(metric_id: str, f: Frames, periods: list[Period], expected: list[float | None]) -> None:
    """The series and the metric both give `expected`, and the very same numbers."""
    fast, slow = both(metric_id, f, periods)
    assert close_to(slow, expected), slow
    assert fast == slow


# ---------------------------------------------------------------------------------------
# Closed in the window


def test_win_rate_counts_deals_closing_on_the_window_edges():
    """JAN: a won (closes on its last day) = 1 ÷ 1; FEB: b lost on its first day, c won on 29 Feb = 1 ÷ 2;
    MAR: nothing closed, empty; JAN seen from FEB: January's window = 1 ÷ 1 (f has no close date)."""
    check("win_rate", deal_frames(), PERIODS, [1.0, 0.5, None, 1.0])


def test_win_rate_value_shares_the_closed_amount():
    """JAN: 100 ÷ 100; FEB: 500 ÷ (300 + 500) = 0.625; MAR: empty; January's window: 1.0."""
    check("win_rate_value", deal_frames(), PERIODS, [1.0, 0.625, None, 1.0])


def test_avg_deal_size_of_won_deals_in_the_window():
    """JAN: a = 100; FEB: c = 500 (b lost); MAR: empty; January's window: 100."""
    check("avg_deal_size", deal_frames(), PERIODS, [100.0, 500.0, None, 100.0])


def test_sales_cycle_days_counts_the_leap_day():
    """JAN: a 10 → 31 Jan = 21 days; FEB: c 1 Dec 2023 → 29 Feb 2024 = 31 + 31 + 28 = 90; MAR: empty."""
    check("sales_cycle_days", deal_frames(), PERIODS, [21.0, 90.0, None, 21.0])


# ---------------------------------------------------------------------------------------
# Open at the as-of date


def test_open_pipeline_at_each_as_of():
    """31 Jan: b 300 + c 500 + e 50 = 850 (a closed that day, d not created); 29 Feb: d 1000 + e 50 = 1050
    (c closed that day); 31 Mar: 1050; January's window seen on 29 Feb is open at 29 Feb: 1050."""
    check("open_pipeline", deal_frames(), PERIODS, [850.0, 1050.0, 1050.0, 1050.0])


def test_weighted_pipeline_at_each_as_of():
    """31 Jan: 300 × 0.4 + 500 × 0.6 + 50 × 0.2 = 120 + 300 + 10 = 430; 29 Feb and after: 1000 × 0.5 + 10 = 510."""
    check("weighted_pipeline", deal_frames(), PERIODS, [430.0, 510.0, 510.0, 510.0])


def test_sales_velocity_multiplies_the_parts_of_the_same_period():
    """JAN: 3 open (b, c, e) × 1.0 × 100 ÷ 21 = 300/21; FEB: 2 open (d, e) × 0.5 × 500 ÷ 90 = 500/90; MAR: no
    win rate, empty; January's window as of 29 Feb: 2 open × 1.0 × 100 ÷ 21 = 200/21."""
    check("sales_velocity", deal_frames(), PERIODS, [300 / 21, 500 / 90, None, 200 / 21])


def test_deal_series_without_deals_are_empty_or_zero_like_the_metrics():
    """No deal at all: pipelines and ratios are empty; quota attainment is 0 ÷ 1000 = 0 (a target, nothing won)."""
    f = frames_from_tables({"opportunities": deals(), "targets": Q1_TARGET})
    for metric_id in ("win_rate", "win_rate_value", "avg_deal_size", "sales_cycle_days", "open_pipeline",
                      "weighted_pipeline", "sales_velocity"):
        check(metric_id, f, PERIODS, [None] * len(PERIODS))
    check("quota_attainment", f, PERIODS, [0.0] * len(PERIODS))


# ---------------------------------------------------------------------------------------
# The fiscal quarter's target


def test_quota_attainment_from_the_quarter_start_to_as_of():
    """31 Jan: a 100 ÷ 1000 = 0.1; 29 Feb: (100 + 500) ÷ 1000 = 0.6; 31 Mar: 0.6; APR: no target, empty."""
    check("quota_attainment", deal_frames(), [JAN, FEB, MAR, APR], [0.1, 0.6, 0.6, None])


def test_pipeline_coverage_against_what_is_still_needed():
    """31 Jan: open closing by 31 Mar = b 300 + c 500 (d after the quarter, e in June) ÷ (1000 − 100) = 800/900;
    29 Feb and 31 Mar: nothing open closes by 31 Mar: 0 ÷ (1000 − 600) = 0; APR: no target, empty."""
    check("pipeline_coverage", deal_frames(), [JAN, FEB, MAR, APR], [800 / 900, 0.0, 0.0, None])


def test_pipeline_coverage_once_the_target_is_met_is_empty():
    """Target 600: 31 Jan still needs 600 − 100 = 500 → 800 ÷ 500 = 1.6; by 29 Feb 600 is won: empty."""
    check("pipeline_coverage", deal_frames(600.0), [JAN, FEB, MAR], [1.6, None, None])


def test_a_zero_target_gives_no_attainment_and_no_coverage():
    """Target 0: attainment 100 ÷ 0 has no value; coverage needs 0 − 100 < 0, nothing: empty too."""
    check("quota_attainment", deal_frames(0.0), [JAN, FEB], [None, None])
    check("pipeline_coverage", deal_frames(0.0), [JAN, FEB], [None, None])


# ---------------------------------------------------------------------------------------
# Leads by creation


def leads(*rows: tuple) -> pl.DataFrame:
    """Leads from (id, created_at, first_response_at, mql_at, sql_at, pql_at, converted_at, opportunity_id) rows."""
    names = ["lead_id", "created_at", "first_response_at", "mql_at", "sql_at", "pql_at", "converted_at",
             "opportunity_id"]
    return pl.DataFrame({n: [r[i] for r in rows] for i, n in enumerate(names)},
                        schema={n: pl.String if n in ("lead_id", "opportunity_id") else pl.Datetime("us")
                                for n in names})


LEADS = leads(
    # the last second of JAN: answered in 3 minutes, MQL and SQL, its deal a was won
    ("l1", T(2024, 1, 31, 23, 59, 59), T(2024, 2, 1, 0, 2, 59), T(2024, 2, 1), T(2024, 2, 2), None, None, "a"),
    # the first second of FEB: answered in 10 minutes, MQL only, its deal b was lost
    ("l2", T(2024, 2, 1), T(2024, 2, 1, 0, 10), T(2024, 2, 2), None, None, None, "b"),
    # the leap day: never answered, product-qualified that morning
    ("l3", T(2024, 2, 29, 12), None, None, None, T(2024, 2, 29, 8), None, None),
    # the leap day's last hour: answered in 4.5 minutes, converted (so SQL and MQL), its deal c was won
    ("l4", T(2024, 2, 29, 23), T(2024, 2, 29, 23, 4, 30), None, None, None, T(2024, 3, 1), "c"),
    # out of creation order: 10 Feb, answered in 2 minutes, MQL only
    ("l5", T(2024, 2, 10), T(2024, 2, 10, 0, 2), T(2024, 2, 11), None, None, None, None),
)
LEAD_PERIODS = [JAN, FEB, MAR]


def lead_frames() -> Frames:
    return frames_from_tables({"opportunities": DEALS, "leads": LEADS})


def test_lead_to_customer_counts_leads_of_won_deals():
    """JAN: l1 (a won) = 1 ÷ 1; FEB: l4 (c won) of l2, l3, l4, l5 = 1/4 (b was lost); MAR: no lead created, empty."""
    check("lead_to_customer", lead_frames(), LEAD_PERIODS, [1.0, 0.25, None])


def test_mql_to_sql_treats_conversion_as_reaching_sql():
    """JAN: l1 SQL ÷ l1 MQL = 1; FEB: MQL l2, l4 (converted), l5; SQL l2 (has a deal), l4 = 2/3; MAR: no MQL, empty."""
    check("mql_to_sql", lead_frames(), LEAD_PERIODS, [1.0, 2 / 3, None])


def test_lead_response_sla_counts_unanswered_leads_as_breaches():
    """SLA 5 minutes. JAN: l1 3 min = 1 ÷ 1; FEB: l4 4.5 and l5 2 min in, l2 10 min and l3 never out = 2/4;
    MAR: empty."""
    check("lead_response_sla", lead_frames(), LEAD_PERIODS, [1.0, 0.5, None])


def test_lead_response_minutes_median_of_answered_leads():
    """JAN: l1 = 3 (its 59th second counts); FEB: median of l2 10, l4 4.5, l5 2 = 4.5 (l3 unanswered); MAR: empty."""
    check("lead_response_minutes", lead_frames(), LEAD_PERIODS, [3.0, 4.5, None])


def test_pql_count_by_pql_date():
    """JAN: 0; FEB: l3 (PQL on the leap day) = 1; MAR: 0; without any lead: empty everywhere."""
    check("pql_count", lead_frames(), LEAD_PERIODS, [0.0, 1.0, 0.0])
    check("pql_count", deal_frames(), LEAD_PERIODS, [None, None, None])


def test_lead_to_customer_counts_a_lead_once_when_its_won_id_is_on_two_deals():
    """Deal c listed twice (both won): l4 is still one customer lead: JAN 1 ÷ 1, FEB 1 ÷ 4, MAR empty."""
    twice = pl.concat([DEALS, deals(("c", "Closed Won", 500.0, D(2023, 12, 1), D(2024, 2, 29), 0.6))])
    check("lead_to_customer", frames_from_tables({"opportunities": twice, "leads": LEADS}), LEAD_PERIODS,
          [1.0, 0.25, None])
