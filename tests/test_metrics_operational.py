"""Operational tier on tiny hand-made tables, each expected value worked out in the test."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops.frames import Frames, frames_from_tables
from revops.metrics import compute
from revops.metrics.common import open_at, target_between
from revops.period import Period

D, T = dt.date, dt.datetime
AS_OF = D(2024, 6, 15)
PERIOD = Period.ending(AS_OF)  # window 2023-06-17 … 2024-06-15; fiscal quarter 2024-04-01 … 2024-06-30


def deals(*rows: tuple) -> pl.DataFrame:
    """Opportunities from (id, stage, amount, created_at, close_date, probability) rows."""
    return pl.DataFrame(
        {"opportunity_id": [r[0] for r in rows], "stage": [r[1] for r in rows], "amount": [r[2] for r in rows],
         "created_at": [r[3] for r in rows], "close_date": [r[4] for r in rows],
         "probability": [r[5] if len(r) > 5 else None for r in rows]},
        schema={"opportunity_id": pl.String, "stage": pl.String, "amount": pl.Float64, "created_at": pl.Date,
                "close_date": pl.Date, "probability": pl.Float64},
    )


PIPELINE = deals(
    ("w1", "Closed Won", 1000.0, D(2024, 1, 1), D(2024, 4, 10)),     # won this quarter
    ("w2", "Closed Won", 3000.0, D(2023, 10, 1), D(2023, 12, 20)),
    ("w3", "Closed Won", None, D(2024, 2, 1), D(2024, 5, 1)),         # won this quarter, amount unknown
    ("l1", "Closed Lost", 2000.0, D(2023, 9, 1), D(2024, 1, 15)),
    ("l2", "Closed Lost", 500.0, D(2023, 1, 1), D(2023, 5, 1)),       # closed before the window
    ("o1", "Proposal", 4000.0, D(2024, 3, 1), D(2024, 6, 20)),        # stage default 0.5
    ("o2", "Negotiation", 6000.0, D(2024, 5, 1), D(2024, 7, 15), 0.9),  # closes after the quarter
    ("o3", "Prospecting", None, D(2024, 6, 1), D(2024, 6, 30)),
)


def targets(*rows: tuple) -> pl.DataFrame:
    """Targets from (start, end, amount, segment) rows."""
    return pl.DataFrame(
        {"period_start": [r[0] for r in rows], "period_end": [r[1] for r in rows],
         "target_amount": [r[2] for r in rows], "segment": [r[3] if len(r) > 3 else None for r in rows]},
        schema={"period_start": pl.Date, "period_end": pl.Date, "target_amount": pl.Float64, "segment": pl.String},
    )


Q2_TARGET = targets((D(2024, 4, 1), D(2024, 6, 30), 10_000.0),
                    (D(2024, 4, 1), D(2024, 6, 30), 4_000.0, "SMB"))  # a breakdown, not added to the company target


def frames(**tables: pl.DataFrame) -> Frames:
    return frames_from_tables({"opportunities": PIPELINE, **tables})


def value(metric_id: str, f: Frames, period: Period = PERIOD) -> float | None:
    return compute(metric_id, f, period).value


NO_DEALS = frames_from_tables({"opportunities": deals()})
OPEN_ONLY = frames_from_tables({"opportunities": deals(("o1", "Proposal", 4000.0, D(2024, 3, 1), D(2024, 6, 20)))})


# ---------------------------------------------------------------------------------------
# win rate, deal size, cycle, velocity


def test_win_rate_counts_deals_closed_in_the_window():
    """won ÷ (won + lost) closed in the window: w1, w2, w3 won, l1 lost (l2 closed before) = 3 ÷ 4."""
    r = compute("win_rate", frames(), PERIOD)
    assert r.value == 0.75
    assert r.detail is not None and sorted(r.detail["opportunity_id"]) == ["l1", "w1", "w2", "w3"]


def test_win_rate_with_no_deals_closed_is_empty():
    """Only open deals: no win rate."""
    r = compute("win_rate", OPEN_ONLY, PERIOD)
    assert r.value is None and r.reason == "No deals closed in the window"


def test_win_rate_value_weighs_by_amount_and_skips_unknown_amounts():
    """won amount ÷ (won + lost amount) = (1000 + 3000) ÷ (1000 + 3000 + 2000); w3 has no amount."""
    assert value("win_rate_value", frames()) == pytest.approx(4000 / 6000)


def test_win_rate_value_with_no_deals_closed_is_empty():
    """No deal closed: empty."""
    assert compute("win_rate_value", OPEN_ONLY, PERIOD).reason == "No deals closed in the window"


def test_win_rate_value_with_only_unknown_amounts_is_empty():
    """Closed deals without amounts: the denominator is unknown, so empty rather than 0."""
    f = frames_from_tables({"opportunities": deals(("w", "Closed Won", None, D(2024, 1, 1), D(2024, 2, 1)))})
    r = compute("win_rate_value", f, PERIOD)
    assert r.value is None and r.reason == "No closed deal in the window has an amount"


def test_avg_deal_size_is_the_mean_won_amount():
    """mean(1000, 3000) = 2000; w3 (no amount) is left out, not counted as 0."""
    assert value("avg_deal_size", frames()) == 2000.0


def test_avg_deal_size_without_won_deals_is_empty():
    """No won deal in the window: empty."""
    assert value("avg_deal_size", OPEN_ONLY) is None


def test_sales_cycle_is_the_median_whole_days_from_creation_to_close():
    """w1 100 days (1 Jan → 10 Apr 2024), w2 80 (1 Oct → 20 Dec), w3 90 (1 Feb → 1 May 2024): median 90."""
    assert value("sales_cycle_days", frames()) == 90.0


def test_sales_cycle_without_won_deals_is_empty():
    """No won deal: empty."""
    assert value("sales_cycle_days", NO_DEALS) is None


def test_sales_velocity_multiplies_open_deals_win_rate_and_size_over_cycle():
    """3 open deals × 0.75 × 2000 ÷ 90 days = 50 per day."""
    assert value("sales_velocity", frames()) == pytest.approx(50.0)


def test_sales_velocity_without_closed_deals_is_empty():
    """No win rate to use: empty, with the win rate's reason."""
    r = compute("sales_velocity", OPEN_ONLY, PERIOD)
    assert r.value is None and r.reason == "No deals closed in the window"


# ---------------------------------------------------------------------------------------
# pipeline


def test_open_pipeline_sums_open_amounts():
    """o1 4000 + o2 6000; o3 has no amount."""
    assert value("open_pipeline", frames()) == 10_000.0


def test_open_pipeline_without_deals_is_empty():
    """No opportunities loaded: empty."""
    assert compute("open_pipeline", NO_DEALS, PERIOD).reason == "No opportunities loaded"


def test_open_at_an_earlier_as_of_rebuilds_the_open_deals():
    """At 2024-04-01: o1 (created 1 Mar) was open and w3 (closed 1 May) still open; o2, o3 not yet created."""
    assert sorted(open_at(frames(), D(2024, 4, 1))["opportunity_id"]) == ["o1", "w1", "w3"]
    # at as_of itself these are exactly the deals whose latest state is open
    assert sorted(open_at(frames(), AS_OF)["opportunity_id"]) == ["o1", "o2", "o3"]


def test_weighted_pipeline_uses_row_probability_else_stage_default():
    """o1 4000 × 0.5 (Proposal default) + o2 6000 × 0.9 (its own) = 2000 + 5400."""
    assert value("weighted_pipeline", frames()) == pytest.approx(7400.0)


def test_weighted_pipeline_without_deals_is_empty():
    """No opportunities loaded: empty."""
    assert value("weighted_pipeline", NO_DEALS) is None


def test_pipeline_coverage_is_open_to_quarter_end_over_what_is_left_of_the_target():
    """Open closing 15–30 Jun: o1 4000 (o3 unknown); left = 10000 − won this quarter (w1 1000) = 9000."""
    assert value("pipeline_coverage", frames(targets=Q2_TARGET)) == pytest.approx(4000 / 9000)


def test_pipeline_coverage_without_target_is_empty():
    """No target for the quarter: empty, saying so."""
    r = compute("pipeline_coverage", frames(targets=targets((D(2024, 1, 1), D(2024, 3, 31), 5000.0))), PERIOD)
    assert r.value is None and r.reason == "No target loaded for this quarter"


def test_pipeline_coverage_when_target_is_met_is_empty():
    """Won 1000 already beats a 900 target: nothing left to cover."""
    r = compute("pipeline_coverage", frames(targets=targets((D(2024, 4, 1), D(2024, 6, 30), 900.0))), PERIOD)
    assert r.value is None and r.reason == "Target already met for this quarter"


def test_quota_attainment_is_won_this_quarter_over_target():
    """Won 1 Apr – 15 Jun: w1 1000 (w3 unknown) ÷ 10000."""
    assert value("quota_attainment", frames(targets=Q2_TARGET)) == pytest.approx(0.1)


def test_quota_attainment_without_target_is_empty():
    """No target: empty."""
    assert compute("quota_attainment", frames(), PERIOD).reason == "No target loaded for this quarter"


def test_targets_count_monthly_rows_whole_and_longer_rows_by_their_share_of_days():
    """Three monthly targets add up; an annual 2024 target counts 91 of its 366 days in Q2."""
    monthly = frames(targets=targets((D(2024, 4, 1), D(2024, 4, 30), 3000.0), (D(2024, 5, 1), D(2024, 5, 31), 3000.0),
                                     (D(2024, 6, 1), D(2024, 6, 30), 3000.0), (D(2024, 7, 1), D(2024, 7, 31), 9.0)))
    assert target_between(monthly, D(2024, 4, 1), D(2024, 6, 30))[0] == pytest.approx(9000.0)
    annual = frames(targets=targets((D(2024, 1, 1), D(2024, 12, 31), 36_600.0)))
    assert target_between(annual, D(2024, 4, 1), D(2024, 6, 30))[0] == pytest.approx(36_600 * 91 / 366)


# ---------------------------------------------------------------------------------------
# time to value


def test_time_to_value_is_the_median_fractional_days_with_won_at_from_the_first_won_deal():
    """a 10.5 days; b 3.25 days (won_at empty → its won deal's close 1 Feb); d 20 days; c outside the window."""
    life = pl.DataFrame({
        "account_id": ["a", "b", "c", "d"],
        "won_at": [T(2024, 1, 1), None, T(2023, 1, 1), T(2024, 3, 1)],
        "first_value_at": [T(2024, 1, 11, 12), T(2024, 2, 4, 6), T(2023, 3, 1), T(2024, 3, 21)],
    })
    won = deals(("wb", "Closed Won", 10.0, D(2024, 1, 1), D(2024, 2, 1))).with_columns(account_id=pl.lit("b"))
    f = frames_from_tables({"lifecycle": life, "opportunities": won})
    r = compute("time_to_value_days", f, PERIOD)
    assert r.value == pytest.approx(10.5)  # median(10.5, 3.25, 20)
    assert r.detail is not None and r.detail.height == 3


def test_time_to_value_without_first_value_in_the_window_is_empty():
    """No customer reached value in the window: empty."""
    life = pl.DataFrame({"account_id": ["c"], "won_at": [T(2023, 1, 1)], "first_value_at": [T(2023, 3, 1)]})
    assert value("time_to_value_days", frames_from_tables({"lifecycle": life})) is None


# ---------------------------------------------------------------------------------------
# expansion rate


def test_expansion_rate_is_annualised_expansion_over_arr_before_the_window():
    """12 × 50 expansion ÷ ARR on 2023-07-01 (12 × 300): churn and new business do not count."""
    subs = pl.DataFrame({
        "subscription_id": ["1", "2", "3", "4"], "account_id": ["a", "a", "b", "c"],
        "start_date": [D(2023, 1, 1), D(2023, 10, 1), D(2023, 1, 1), D(2024, 1, 1)],
        "end_date": [None, None, D(2024, 3, 1), None], "mrr": [100.0, 50.0, 200.0, 300.0],
    })
    period = Period.ending(D(2024, 6, 30))  # window starts 2023-07-02: ARR measured at 2023-07-01
    assert value("expansion_rate", frames_from_tables({"subscriptions": subs}), period) == pytest.approx(600 / 3600)


def test_expansion_rate_without_arr_at_the_start_is_empty():
    """Nothing was paying before the window: empty with the day in the reason."""
    subs = pl.DataFrame({"subscription_id": ["1"], "account_id": ["a"], "start_date": [D(2024, 1, 1)],
                         "end_date": [None], "mrr": [100.0]})
    r = compute("expansion_rate", frames_from_tables({"subscriptions": subs}), Period.ending(D(2024, 6, 30)))
    assert r.value is None and r.reason == "No ARR at the start of the window (2023-07-01)"
