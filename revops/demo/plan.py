"""Demo plan and cost: monthly sales and marketing spend by channel, quarterly bookings targets."""
from __future__ import annotations

import numpy as np
import polars as pl

from revops.demo.accounts import SEGMENTS, label
from revops.demo.clock import ANNUAL_GROWTH, Clock
from revops.demo.deals import WON, Deals

# Spend as a multiple of new-business bookings: with an 80 % margin, a CAC payback of about two years.
SPEND_TO_NEW_BOOKINGS = 1.3
MARKETING_SHARE = 0.45
MARKETING = ("paid_search", "paid_social", "events", "content", "partner", "webinar")
MARKETING_MIX = np.array([0.30, 0.18, 0.20, 0.12, 0.10, 0.10])
SALES = ("direct_sales", "sdr_outbound", "sales_tools")
SALES_MIX = np.array([0.62, 0.25, 0.13])
# Events cluster in spring and autumn conference seasons; summer and December are quiet.
EVENT_SEASON = np.array([0.8, 1.0, 1.5, 1.1, 1.0, 1.3, 0.4, 0.4, 1.2, 1.6, 1.1, 0.6])
TARGET_STRETCH = (1.1, 1.3)
TARGET_ROUNDING = 1_000.0


def _month_index(clock: Clock, days: np.ndarray) -> np.ndarray:
    """Months since the history's first month."""
    months = clock.calendar(days).astype("datetime64[M]").astype(np.int64)
    return months - np.datetime64(clock.start, "M").astype(np.int64)


def spend_frame(rng: np.random.Generator, deals: Deals, clock: Clock) -> pl.DataFrame:
    """Monthly spend: a growing budget sized on the year's new-business bookings, split by channel."""
    last = int(_month_index(clock, np.array([clock.horizon - 1]))[0])
    months = np.arange(last + 1)
    first_day = np.datetime64(clock.start, "M") + months.astype("timedelta64[M]")
    new_won = (deals.state == WON) & (deals.type == 0)
    year_start = clock.horizon - 365.0
    recent = new_won & (deals.close_time >= year_start)
    bookings = float(deals.amount[recent].sum())
    growth = np.exp(ANNUAL_GROWTH * months / 12.0)
    # Scale the growth curve so that the last twelve months spend the intended multiple of bookings.
    budget = growth * SPEND_TO_NEW_BOOKINGS * max(bookings, 1.0) / growth[-12:].sum()
    calendar_month = first_day.astype(np.int64) % 12
    rows = []
    for category, channels, mix, share in (("marketing", MARKETING, MARKETING_MIX, MARKETING_SHARE),
                                            ("sales", SALES, SALES_MIX, 1.0 - MARKETING_SHARE)):
        for c, channel in enumerate(channels):
            season = EVENT_SEASON[calendar_month] if channel == "events" else np.ones(months.size)
            noise = rng.lognormal(0.0, 0.08, months.size)
            rows.append(pl.DataFrame({
                "month": first_day.astype("datetime64[D]"),
                "amount": np.round(budget * share * mix[c] * season * noise, 0),
                "category": [category] * months.size,
                "channel": [channel] * months.size,
            }))
    return pl.concat(rows).with_columns(pl.col("month").cast(pl.Date)).sort("month", "category", "channel")


def targets_frame(rng: np.random.Generator, deals: Deals, clock: Clock) -> pl.DataFrame:
    """Quarterly bookings targets per segment (and their sum company-wide), a stretch over what closes."""
    won = deals.won
    # Every quarter from the history's first through the next one, even those nothing closes in.
    last_end = clock.quarter_end(np.array([clock.horizon + 92.0]))[0]
    ends = np.unique(clock.quarter_end(np.arange(0.0, last_end + 1.0, 28.0)))
    quarter = np.searchsorted(ends, clock.quarter_end(deals.paths.planned_close[won]))
    inside = quarter < ends.size
    # numpy sums run in a fixed order, so the targets are the same to the cent on every run.
    booked = np.bincount(quarter[inside] * 3 + deals.segment[won][inside], weights=deals.amount[won][inside],
                         minlength=ends.size * 3).reshape(ends.size, 3)
    # Deals closing after today are only partly created yet: plan those quarters on last year's growth too.
    year_ago = np.vstack([np.zeros((4, 3)), booked[:-4]])
    future = (ends >= clock.horizon - 1.0)[:, None]
    basis = np.where(future, np.maximum(booked, year_ago * np.exp(ANNUAL_GROWTH)), booked)
    per_segment = np.round(basis * rng.uniform(*TARGET_STRETCH, basis.shape) / TARGET_ROUNDING) * TARGET_ROUNDING
    amounts = np.hstack([per_segment.sum(axis=1, keepdims=True), per_segment])  # column 0: company-wide
    frame = pl.DataFrame({
        "quarter_end": np.repeat(ends, 4),
        "segment": np.tile(np.arange(-1, 3), ends.size),
        "target_amount": amounts.ravel(),
    }).filter(pl.col("target_amount") > 0)
    return frame.select(
        clock.date_expr("quarter_end").dt.month_start().dt.offset_by("-2mo").alias("period_start"),
        clock.date_expr("quarter_end").alias("period_end"),
        "target_amount",
        label("segment", SEGMENTS).alias("segment"),
        pl.lit(None, dtype=pl.String).alias("owner"),
    )
