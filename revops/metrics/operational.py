"""Operational tier: the pipeline, how deals close, and how fast customers get value."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.frames import Frames
from revops.metrics.common import (
    between, closed_between, deal_columns, detail, fmt_day, fractional_days, in_window, lifecycle_won, median,
    open_at, ratio, result, target_between, total, whole_days, won_between,
)
from revops.metrics.registry import MetricResult, compute, metric
from revops.period import Period
from revops.revenue import arr_at, movements

NO_DEALS = "No opportunities loaded"
NO_CLOSED = "No deals closed in the window"
NO_TARGET = "No target loaded for this quarter"


@metric("pipeline_coverage", "operational", "Pipeline coverage", "ratio",
        "Open pipeline expected to close by the end of the fiscal quarter (open deals with a close date from "
        "the as-of date to the quarter end) ÷ what is still needed to reach the quarter's target (target minus "
        "the won amount closed from the quarter start to as-of). Empty when no target is loaded or the target "
        "is already met.")
def pipeline_coverage(frames: Frames, period: Period) -> MetricResult:
    """Open amount closing in [as_of, quarter end] ÷ (quarter target − won so far this quarter)."""
    q_start, q_end = period.quarter()
    in_quarter = open_at(frames, period.as_of).filter(between("close_date", period.as_of, q_end))
    rows = detail(lambda: deal_columns(in_quarter, "probability", "forecast_category").sort("amount", descending=True))
    target, _ = target_between(frames, q_start, q_end)
    if target is None:
        return MetricResult.empty(NO_TARGET, rows)
    remaining = target - total(won_between(frames, q_start, period.as_of), "amount")
    if remaining <= 0:
        return MetricResult.empty("Target already met for this quarter", rows)
    return ratio(total(in_quarter, "amount"), remaining, NO_TARGET, rows)


@metric("win_rate", "operational", "Win rate", "ratio",
        "Share of the deals closed in the window that were won: won deals ÷ (won + lost deals), counted by "
        "close date.")
def win_rate(frames: Frames, period: Period) -> MetricResult:
    """Won ÷ (won + lost), counted, closed in the window."""
    closed = closed_between(frames, period.start, period.end)
    won = closed.filter(pl.col("state") == "won").height
    return ratio(won, closed.height, NO_CLOSED, detail(lambda: deal_columns(closed, "lost_reason").sort("close_date")))


@metric("win_rate_value", "operational", "Win rate (value)", "ratio",
        "Share of the value of deals closed in the window that was won: won amount ÷ (won + lost amount). "
        "Deals without an amount are left out.")
def win_rate_value(frames: Frames, period: Period) -> MetricResult:
    """Won amount ÷ (won + lost amount), closed in the window."""
    closed = closed_between(frames, period.start, period.end)
    rows = detail(lambda: deal_columns(closed, "lost_reason").sort("close_date"))
    if closed.height == 0:
        return MetricResult.empty(NO_CLOSED, rows)
    won = total(closed.filter(pl.col("state") == "won"), "amount")
    return ratio(won, total(closed, "amount"), "No closed deal in the window has an amount", rows)


@metric("avg_deal_size", "operational", "Average deal size", "money",
        "Mean amount of the deals won in the window (by close date); deals without an amount are left out.")
def avg_deal_size(frames: Frames, period: Period) -> MetricResult:
    """Mean amount of won deals closed in the window."""
    won = won_between(frames, period.start, period.end)
    mean = won["amount"].drop_nulls().mean() if won.height else None
    return result(mean, "No won deal with an amount closed in the window",  # type: ignore[arg-type]
                  detail(lambda: deal_columns(won).sort("close_date")))


@metric("sales_cycle_days", "operational", "Sales cycle", "days",
        "Median number of whole days from a deal's creation to its close, over the deals won in the window.",
        higher_is_better=False)
def sales_cycle_days(frames: Frames, period: Period) -> MetricResult:
    """Median close_date − created_at (whole days) over won deals closed in the window."""
    won = won_between(frames, period.start, period.end).with_columns(
        cycle_days=whole_days("created_at", "close_date"))
    return result(median(won, "cycle_days"), "No won deal with a creation date closed in the window",
                  detail(lambda: deal_columns(won, "cycle_days").sort("close_date")))


@metric("sales_velocity", "operational", "Sales velocity", "money/day",
        "Revenue the pipeline produces per day: open deals at the as-of date × win rate × average deal size ÷ "
        "sales cycle in days (the three from deals closed in the window).")
def sales_velocity(frames: Frames, period: Period) -> MetricResult:
    """Open deals × win_rate × avg_deal_size ÷ sales_cycle_days."""
    n_open = open_at(frames, period.as_of).height
    # Only the three numbers are used here (and a page has usually computed them already).
    parts = {name: compute(name, frames, period, details=False)
             for name in ("win_rate", "avg_deal_size", "sales_cycle_days")}
    detail = pl.DataFrame({"component": ["open_deals", *parts],
                           "value": [float(n_open), *(p.value for p in parts.values())]},
                          schema={"component": pl.String, "value": pl.Float64})
    for part in parts.values():
        if part.value is None:
            return MetricResult.empty(part.reason or NO_CLOSED, detail)
    if frames.opportunities.height == 0:
        return MetricResult.empty(NO_DEALS, detail)
    numerator = n_open * parts["win_rate"].value * parts["avg_deal_size"].value  # type: ignore[operator]
    return ratio(numerator, parts["sales_cycle_days"].value, "The median sales cycle is 0 days", detail)


@metric("open_pipeline", "operational", "Open pipeline", "money",
        "Total amount of the deals open at the as-of date (created by then and not yet won or lost); deals "
        "without an amount are left out.")
def open_pipeline(frames: Frames, period: Period) -> MetricResult:
    """Σ amount of open deals at as_of."""
    if frames.opportunities.height == 0:
        return MetricResult.empty(NO_DEALS)
    deals = open_at(frames, period.as_of)
    return result(total(deals, "amount"), NO_DEALS, detail(lambda: deal_columns(deals).sort("amount", descending=True)))


@metric("weighted_pipeline", "operational", "Weighted pipeline", "money",
        "Open pipeline weighted by the chance to win: Σ amount × probability over the deals open at the as-of "
        "date, using the deal's own probability when given, else its stage's default probability.")
def weighted_pipeline(frames: Frames, period: Period) -> MetricResult:
    """Σ amount × (row probability, else stage default) over open deals at as_of."""
    if frames.opportunities.height == 0:
        return MetricResult.empty(NO_DEALS)
    deals = open_at(frames, period.as_of).with_columns(
        weight=pl.coalesce("probability", "stage_probability")
    ).with_columns(weighted_amount=pl.col("amount") * pl.col("weight"))
    rows = detail(lambda: deal_columns(deals, "weight", "weighted_amount").sort("weighted_amount", descending=True))
    return result(total(deals, "weighted_amount"), NO_DEALS, rows)


@metric("quota_attainment", "operational", "Quota attainment", "ratio",
        "Won amount closed in the fiscal quarter up to the as-of date ÷ the quarter's bookings target.")
def quota_attainment(frames: Frames, period: Period) -> MetricResult:
    """Won amount closed in [quarter start, as_of] ÷ quarter target."""
    q_start, q_end = period.quarter()
    won = won_between(frames, q_start, period.as_of)
    target, _ = target_between(frames, q_start, q_end)
    rows = detail(lambda: deal_columns(won).sort("close_date"))
    if target is None:
        return MetricResult.empty(NO_TARGET, rows)
    return ratio(total(won, "amount"), target, "The quarter's target is 0", rows)


@metric("time_to_value_days", "operational", "Time to value", "days",
        "Median time from contract signature to the customer's first value (go-live), in days with hours "
        "counted, over the customers whose first value falls in the window. When the signature time is "
        "missing, the close date of the account's first won deal stands in.", higher_is_better=False)
def time_to_value_days(frames: Frames, period: Period) -> MetricResult:
    """Median first_value_at − won_at (fractional days), first_value_at in the window."""
    rows = lifecycle_won(frames).filter(in_window("first_value_at", period)).with_columns(
        days_to_value=fractional_days("won_at", "first_value_at"))
    shown = detail(lambda: rows.select("account_id", "won_at", "first_value_at", "days_to_value")
                   .sort("first_value_at"))
    return result(median(rows, "days_to_value"),
                  "No customer with a signature date reached first value in the window", shown)


@metric("expansion_rate", "operational", "Expansion rate", "ratio",
        "ARR added by existing customers paying more: 12 × the expansion movements (month-end MRR increases "
        "of accounts already paying) in the window ÷ ARR at the end of the day before the window starts.")
def expansion_rate(frames: Frames, period: Period) -> MetricResult:
    """12 × Σ expansion in the window ÷ ARR(start − 1 day)."""
    subs = frames.subscriptions
    if subs.height == 0:
        return MetricResult.empty("No subscriptions loaded")
    moves = movements(subs, period.start, period.end).filter(pl.col("movement") == "expansion")
    before = period.start - dt.timedelta(days=1)
    return ratio(12.0 * total(moves, "amount"), arr_at(subs, before),
                 f"No ARR at the start of the window ({fmt_day(before)})", moves)
