"""Deal metrics at many periods in one pass (registry.series): a trend line's dozen points at a million deals.

Each deal's state, money and days are laid out once per frames; a period then costs a binary search
(counts, medians of a window sorted by its date) or one pass over a narrow column (sums of money, which
are added up over the same rows in the same table order as the metric's own, so the values are the same
to the last digit). The metric functions (operational.py) stay the definition: tests/test_metric_series.py
and tests/test_series_deals.py check every value against them.
"""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.frames import Frames
from revops.memo import derived
from revops.metrics.common import deals, finite_value, ratio_value, target_between
from revops.metrics.registry import series
from revops.period import Period

Window = tuple[dt.date, dt.date]
# Stand-ins for "no creation date" (open since ever) and "still open" (never closes), as day numbers.
_EVER = -(2**31)
_NEVER = 2**31 - 1


# ---------------------------------------------------------------------------------------
# Windows of sorted dates


def window_bounds(stamps: pl.Series, windows: list[Window]) -> list[tuple[int, int]]:
    """[lo, hi) of the rows of each window [start, end] in a sorted Date or Datetime("us") series without nulls.

    A timestamp's day lies in [start, end] when it is from start 00:00 to before the day after end
    (as revops.rows.rows_between finds one window).
    """
    if not windows:
        return []
    starts = [s for s, _ in windows]
    after_ends = [e + dt.timedelta(days=1) for _, e in windows]
    if stamps.dtype == pl.Date:
        lo_keys, hi_keys = pl.Series(starts, dtype=pl.Date), pl.Series(after_ends, dtype=pl.Date)
    else:
        lo_keys = pl.Series([dt.datetime.combine(d, dt.time()) for d in starts], dtype=stamps.dtype)
        hi_keys = pl.Series([dt.datetime.combine(d, dt.time()) for d in after_ends], dtype=stamps.dtype)
    lows = stamps.search_sorted(lo_keys, side="left").to_list()
    highs = stamps.search_sorted(hi_keys, side="left").to_list()
    return [(lo, max(hi, lo)) for lo, hi in zip(lows, highs)]


def window_counts(stamps: pl.Series, windows: list[Window]) -> list[int]:
    """How many of the sorted dates (no nulls) lie in each window [start, end]."""
    return [hi - lo for lo, hi in window_bounds(stamps, windows)]


def window_medians(values: pl.Series, bounds: list[tuple[int, int]]) -> list[float | None]:
    """The median of each slice [lo, hi) of `values` as Series.median gives it (nulls left out; None for no values)."""
    if not bounds:
        return []
    # A median is order-blind: the slice of a window's rows sorted by date has the window's median. One select
    # of all the windows' medians lets Polars take them side by side on its threads.
    medians = values.to_frame("v").select(
        [pl.col("v").slice(lo, hi - lo).median().alias(str(i)) for i, (lo, hi) in enumerate(bounds)]).row(0)
    return [finite_value(m) for m in medians]


def sorted_days(values: pl.Series) -> pl.Series:
    """The non-null values, sorted (as they are when already in order)."""
    values = values.drop_nulls()
    return values if values.is_sorted() else values.sort()


def windows_of(periods: list[Period]) -> list[Window]:
    """Each period's window [start, end]."""
    return [(p.start, p.end) for p in periods]


def day_number(d: dt.date) -> int:
    """A date as Polars stores it (days since 1970-01-01), to compare with Int32 day columns."""
    return (d - dt.date(1970, 1, 1)).days


# ---------------------------------------------------------------------------------------
# The deals, laid out once per frames


def _closed(frames: Frames) -> pl.DataFrame:
    """Won and lost deals with a close date, in table order: day (close day number), won, amount."""
    # The value columns the metrics filter (state an Enum): made once per frames, shared with them.
    opps = deals(frames)
    state, close = pl.col("state"), pl.col("close_date").cast(pl.Date)
    return derived(opps, "series_closed", lambda: opps.select(
        day=close.cast(pl.Int32), won=state == "won", amount=pl.col("amount").cast(pl.Float64),
        keep=state.is_in(["won", "lost"]) & close.is_not_null(),
    ).filter("keep").drop("keep"))


def _won(frames: Frames) -> pl.DataFrame:
    """Won deals with a close date, in table order: day, amount."""
    closed = _closed(frames)
    return derived(closed, "series_won", lambda: closed.filter("won").select("day", "amount"))


def _won_by_day(frames: Frames) -> pl.DataFrame:
    """Won deals with a close date sorted by it (stable): close (Date), cycle_days (whole days from creation to
    close, as sales_cycle_days counts them)."""
    opps = deals(frames)

    def make() -> pl.DataFrame:
        close = pl.col("close_date").cast(pl.Date)
        won = opps.filter((pl.col("state") == "won") & close.is_not_null())
        return won.select(close=close, cycle_days=(close - pl.col("created_at").cast(pl.Date)).dt.total_days()
                          ).sort("close", maintain_order=True)
    return derived(opps, "series_won_by_day", make)


def _lives(frames: Frames) -> pl.DataFrame:
    """Every deal in table order: begin (creation day, _EVER when unknown), end (close day, _NEVER while open; open
    on the days begin <= d < end), close (close day number), amount, weighted.

    A deal won or lost without a close date is never open (open_at's test of its close date is unknown): its end
    is _EVER.
    """
    opps = deals(frames)

    def make() -> pl.DataFrame:
        state, close = pl.col("state"), pl.col("close_date").cast(pl.Date).cast(pl.Int32)
        return opps.select(
            begin=pl.col("created_at").cast(pl.Date).cast(pl.Int32).fill_null(_EVER),
            end=pl.when(state == "open").then(pl.lit(_NEVER, pl.Int32))
            .when(state.is_in(["won", "lost"])).then(close.fill_null(_EVER)).otherwise(pl.lit(_EVER, pl.Int32)),
            close=close,
            amount=pl.col("amount").cast(pl.Float64),
            # The same products as weighted_pipeline's, row by row.
            weighted=(pl.col("amount") * pl.coalesce("probability", "stage_probability")).cast(pl.Float64),
        )
    return derived(opps, "series_lives", make)


def _open_near(frames: Frames, days: list[dt.date]) -> pl.DataFrame:
    """The deals open on at least one day from the first of `days` to the last, in table order (kept for the
    few series of one page that ask the same days: pipelines, coverage, velocity)."""
    lives = _lives(frames)
    first, last = day_number(min(days)), day_number(max(days))
    return derived(lives, "series_open_near", lambda: lives.filter((pl.col("begin") <= last) & (pl.col("end") > first)),
                   key=(first, last), limit=2)


def _open_mask(d: dt.date) -> pl.Expr:
    """The deal (a row of _lives) is open at the end of day d."""
    n = day_number(d)
    return (pl.col("begin") <= n) & (pl.col("end") > n)


def open_counts(frames: Frames, days: list[dt.date]) -> list[int]:
    """How many deals are open at the end of each day (open_at(frames, day).height)."""
    if not days:
        return []
    counts = _open_near(frames, days).select([_open_mask(d).sum().alias(str(i)) for i, d in enumerate(days)]).row(0)
    return [int(n) for n in counts]


def open_sums(frames: Frames, days: list[dt.date], col: str,
              closing_by: list[dt.date] | None = None) -> list[float]:
    """Σ `col` over the deals open at the end of each day, in table order as common.total adds them (0.0 for none).

    With closing_by, only the deals whose close date lies from the day to its closing_by date count.
    """
    if not days:
        return []
    near = _open_near(frames, days)
    keeps = [_open_mask(d) for d in days]
    if closing_by is not None:
        keeps = [keep & pl.col("close").is_between(day_number(d), day_number(by))
                 for keep, d, by in zip(keeps, days, closing_by)]
    return _sums(near, col, keeps)


def _sums(rows: pl.DataFrame, col: str, keeps: list[pl.Expr]) -> list[float]:
    """Σ col over the rows where each of `keeps` holds, in table order as common.total adds them (0.0 for none).

    One select of all the sums lets Polars take them side by side on its threads.
    """
    if not keeps:
        return []
    sums = rows.select([pl.col(col).filter(keep).sum().alias(str(i)) for i, keep in enumerate(keeps)]).row(0)
    return [float(v) for v in sums]


def window_sums(rows: pl.DataFrame, windows: list[Window]) -> list[float]:
    """Σ amount of the rows (day, amount) whose day lies in each window, added up in table order as common.total
    adds them (0.0 for none)."""
    if not windows:
        return []
    # Only the rows of some window are looked at a dozen times.
    first, last = day_number(min(s for s, _ in windows)), day_number(max(e for _, e in windows))
    near = rows.filter(pl.col("day").is_between(first, last))
    return _sums(near, "amount", [pl.col("day").is_between(day_number(s), day_number(e)) for s, e in windows])


def won_sums(frames: Frames, windows: list[Window]) -> list[float]:
    """Σ amount of the won deals closed in each window, as common.total adds won_between's rows (0.0 for none)."""
    return window_sums(_won(frames), windows)


def _quarter_targets(frames: Frames, periods: list[Period]) -> list[float | None]:
    """The bookings target of each period's fiscal quarter (target_between, once per distinct quarter)."""
    targets: dict[tuple[dt.date, dt.date], float | None] = {}
    for p in periods:
        q = p.quarter()
        if q not in targets:
            targets[q] = target_between(frames, *q)[0]
    return [targets[p.quarter()] for p in periods]


# ---------------------------------------------------------------------------------------
# The metrics


@series("win_rate")
def win_rate_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Won ÷ closed deals by close date in each window (counts: two binary searches per window)."""
    windows = windows_of(periods)
    won = window_counts(_won_by_day(frames)["close"], windows)
    return [ratio_value(w, c) for w, c in zip(won, _closed_counts(frames, windows))]


def _closed_counts(frames: Frames, windows: list[Window]) -> list[int]:
    """How many deals were won or lost in each window."""
    closed = _closed(frames)
    days = derived(closed, "series_closed_days", lambda: closed["day"].cast(pl.Date).sort())
    return window_counts(days, windows)


@series("win_rate_value")
def win_rate_value_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Won amount ÷ closed amount by close date in each window (empty where no deal closed)."""
    windows = windows_of(periods)
    closed = window_sums(_closed(frames).select("day", "amount"), windows)
    return [None if n == 0 else ratio_value(w, c)
            for n, w, c in zip(_closed_counts(frames, windows), won_sums(frames, windows), closed)]


@series("avg_deal_size")
def avg_deal_size_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Mean amount of the won deals closed in each window (the same rows, in the same order, as the metric)."""
    won = _won(frames)
    out: list[float | None] = []
    for start, end in windows_of(periods):
        amounts = won["amount"].filter(won["day"].is_between(day_number(start), day_number(end))).drop_nulls()
        out.append(finite_value(amounts.mean()) if len(amounts) else None)  # type: ignore[arg-type]
    return out


@series("sales_cycle_days")
def sales_cycle_days_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Median cycle of the won deals closed in each window: a slice of the won deals sorted by close date."""
    won = _won_by_day(frames)
    return window_medians(won["cycle_days"], window_bounds(won["close"], windows_of(periods)))


@series("open_pipeline")
def open_pipeline_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Σ amount of the deals open at each as-of date."""
    if frames.opportunities.height == 0:
        return [None] * len(periods)
    return [finite_value(v) for v in open_sums(frames, [p.as_of for p in periods], "amount")]


@series("weighted_pipeline")
def weighted_pipeline_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Σ amount × probability of the deals open at each as-of date."""
    if frames.opportunities.height == 0:
        return [None] * len(periods)
    return [finite_value(v) for v in open_sums(frames, [p.as_of for p in periods], "weighted")]


@series("quota_attainment")
def quota_attainment_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Won amount from each fiscal quarter's start to as-of ÷ the quarter's target."""
    won = won_sums(frames, [(p.quarter()[0], p.as_of) for p in periods])
    return [None if t is None else ratio_value(w, t) for w, t in zip(won, _quarter_targets(frames, periods))]


@series("pipeline_coverage")
def pipeline_coverage_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Open amount closing from as-of to the quarter end ÷ (quarter target − won from the quarter start to as-of)."""
    if not periods:
        return []
    won = won_sums(frames, [(p.quarter()[0], p.as_of) for p in periods])
    in_quarter = open_sums(frames, [p.as_of for p in periods], "amount", [p.quarter()[1] for p in periods])
    out: list[float | None] = []
    for target, won_so_far, expected in zip(_quarter_targets(frames, periods), won, in_quarter):
        remaining = None if target is None else target - won_so_far
        out.append(None if remaining is None or remaining <= 0 else ratio_value(expected, remaining))
    return out


@series("sales_velocity")
def sales_velocity_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Open deals × win rate × average deal size ÷ sales cycle, each part at the same period."""
    if not periods:
        return []
    n_open = open_counts(frames, [p.as_of for p in periods])
    rates, sizes = win_rate_series(frames, periods), avg_deal_size_series(frames, periods)
    cycles = sales_cycle_days_series(frames, periods)
    out: list[float | None] = []
    for n, rate, size, cycle in zip(n_open, rates, sizes, cycles):
        if rate is None or size is None or cycle is None or frames.opportunities.height == 0:
            out.append(None)
        else:
            out.append(ratio_value(n * rate * size, cycle))
    return out


__all__ = ["day_number", "finite_value", "open_counts", "open_sums", "ratio_value", "sorted_days",
           "window_bounds", "window_counts", "window_medians", "window_sums", "windows_of", "won_sums"]
