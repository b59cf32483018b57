"""Shared plumbing of the metric functions: date filters, guarded ratios, the common selections of rows."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import polars as pl

from revops.frames import Frames
from revops.memo import derived
from revops.metrics.registry import MetricResult, details_wanted
from revops.reads import (READ_BACK_DAYS, column_distinct, reads_from_file, rows_with_keys, table_between,
                          window_total)
from revops.rows import rows_between, runs_of
from revops.period import Period
from revops.revenue import arr_by_account


# ---------------------------------------------------------------------------------------
# Results that never carry NaN, inf or a 0 standing in for "unknown"


def is_number(x: object) -> bool:
    """Whether x is a finite number (not None, NaN or inf)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def result(value: float | None, reason: str, detail: pl.DataFrame | None = None,
           table: pl.DataFrame | None = None) -> MetricResult:
    """The value, or an empty result with `reason` when it is missing or not finite."""
    if not is_number(value):
        return MetricResult(None, reason, detail, table)
    return MetricResult(float(value), None, detail, table)  # type: ignore[arg-type]


def ratio(numerator: float | None, denominator: float | None, reason: str,
          detail: pl.DataFrame | None = None, table: pl.DataFrame | None = None) -> MetricResult:
    """numerator ÷ denominator, or an empty result with `reason` when the denominator is 0 or unknown."""
    if not is_number(denominator) or denominator == 0 or not is_number(numerator):
        return MetricResult(None, reason, detail, table)
    return MetricResult(float(numerator) / float(denominator), None, detail, table)  # type: ignore[arg-type]


def ratio_value(numerator: float | None, denominator: float | None) -> float | None:
    """ratio()'s value alone (None for a 0 or unknown denominator): what a series gives for a ratio metric."""
    return ratio(numerator, denominator, "").value


def finite_value(value: object) -> float | None:
    """result()'s value alone (None unless a finite number): what a series gives for any other metric."""
    return float(value) if is_number(value) else None  # type: ignore[arg-type]


def detail(make: Callable[[], pl.DataFrame]) -> pl.DataFrame | None:
    """The drill-down rows make() builds, or None when only the value is wanted (trend points, the previous period)."""
    return make() if details_wanted() else None


def total(df: pl.DataFrame, col: str) -> float:
    """Σ of a column, nulls (unknown amounts) left out; 0.0 for no rows."""
    return float(df[col].cast(pl.Float64).sum()) if df.height else 0.0


def median(df: pl.DataFrame, col: str) -> float | None:
    """Median of a column, nulls left out; None for no values."""
    m = df[col].drop_nulls().median() if df.height else None
    return float(m) if m is not None else None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Time


def day(col: str) -> pl.Expr:
    """The calendar day of a date or timestamp column."""
    return pl.col(col).cast(pl.Date)


def between(col: str, start: dt.date, end: dt.date) -> pl.Expr:
    """The column's day lies in [start, end], both included."""
    return day(col).is_between(start, end, closed="both")


def in_window(col: str, period: Period) -> pl.Expr:
    """The column's day lies in the period's window."""
    return between(col, period.start, period.end)


def days_to(as_of: dt.date, n: int) -> tuple[dt.date, dt.date]:
    """The n days ending with as_of, as_of included."""
    return as_of - dt.timedelta(days=n - 1), as_of


def days_before(as_of: dt.date, n: int, skip: int) -> tuple[dt.date, dt.date]:
    """The n days just before the `skip` days ending with as_of."""
    end = as_of - dt.timedelta(days=skip)
    return end - dt.timedelta(days=n - 1), end


def whole_days(start: str, end: str) -> pl.Expr:
    """end − start in whole days (date columns)."""
    return (pl.col(end).cast(pl.Date) - pl.col(start).cast(pl.Date)).dt.total_days()


def fractional_days(start: str, end: str) -> pl.Expr:
    """end − start in days with hours counted (timestamp columns)."""
    return (pl.col(end).cast(pl.Datetime("us")) - pl.col(start).cast(pl.Datetime("us"))).dt.total_seconds(
        fractional=True) / 86_400


def fractional_minutes(start: str, end: str) -> pl.Expr:
    """end − start in minutes with seconds counted (timestamp columns)."""
    return (pl.col(end).cast(pl.Datetime("us")) - pl.col(start).cast(pl.Datetime("us"))).dt.total_seconds(
        fractional=True) / 60


# ---------------------------------------------------------------------------------------
# Deals


# The columns a deal's value needs (state, money, dates, weights). A value-only metric (a trend point,
# the previous period) filters these few instead of every column: at a million deals, filtering the
# text ids and names is most of the time, and a trend filters a dozen windows.
STATE = pl.Enum(["open", "won", "lost"])  # every deal's state (revops.stages.classify)
VALUE_COLUMNS = ("state", "amount", "close_date", "created_at", "probability", "stage_probability")


def deals(frames: Frames) -> pl.DataFrame:
    """Every deal: all columns when the drill-down rows are wanted, else VALUE_COLUMNS (in table order)."""
    opps = frames.opportunities
    if details_wanted():
        return opps
    # state as an Enum: comparing a million small integers, not a million strings (3x faster filters).
    return derived(opps, "deal_values", lambda: opps.select([c for c in VALUE_COLUMNS if c in opps.columns])
                   .with_columns(pl.col("state").cast(STATE)))


def closed_between(frames: Frames, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Won and lost deals whose close_date lies in [start, end], in table order (columns as deals())."""
    opps = deals(frames)
    # The closed deals are kept per frame (a trend asks a dozen windows of them): each window then
    # scans those rows only, not every deal.
    closed = derived(opps, "closed_deals", lambda: opps.filter(pl.col("state").is_in(["won", "lost"])))
    return closed.filter(between("close_date", start, end))


def closed_columns(frames: Frames, start: dt.date, end: dt.date, columns: list[str]) -> pl.DataFrame:
    """closed_between's rows (in table order) with only `columns` (among them state and close_date), for a
    one-off window: filtering a few columns of every deal is several times faster than filtering them all,
    and nothing is kept."""
    return frames.opportunities.select(*columns).filter(
        pl.col("state").is_in(["won", "lost"]) & between("close_date", start, end))


def won_between(frames: Frames, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Won deals whose close_date lies in [start, end]."""
    return closed_between(frames, start, end).filter(pl.col("state") == "won")


def open_at(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    """Deals open at the end of as_of (columns as deals()).

    The table holds each deal's latest state, so a deal counts when it was created by as_of
    (or has no creation date) and is open now or closed only after as_of; at the default
    as_of (the latest event) this is exactly the deals whose latest state is open.
    """
    opps = deals(frames)
    created = pl.col("created_at").is_null() | (day("created_at") <= as_of)
    still_open = (pl.col("state") == "open") | (
        pl.col("state").is_in(["won", "lost"]) & (day("close_date") > as_of))
    return opps.filter(created & still_open)


def deal_columns(df: pl.DataFrame, *extra: str) -> pl.DataFrame:
    """The columns of a deal that a drill-down shows."""
    cols = ["opportunity_id", "opportunity_name", "account_id", "owner", "segment", "stage_name", "state",
            "amount", "created_at", "close_date", *extra]
    return df.select([c for c in dict.fromkeys(cols) if c in df.columns])


# ---------------------------------------------------------------------------------------
# Money in and out


def spend_between(frames: Frames, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Spend rows whose month's first day lies in [start, end]."""
    return frames.spend.filter(pl.col("month").cast(pl.Date).dt.month_start().is_between(start, end))


def target_between(frames: Frames, start: dt.date, end: dt.date) -> tuple[float | None, pl.DataFrame]:
    """The bookings target of [start, end] and the target rows behind it (None when no row overlaps).

    Rows overlapping the period count in proportion to the days they share with it (a monthly
    target counts whole in its quarter, an annual one by its share of days). The most general
    level present wins, so company, segment and owner targets of the same period are not added up.
    """
    t = frames.targets.filter((pl.col("period_start") <= end) & (pl.col("period_end") >= start))
    if t.height == 0:
        return None, t
    company = t.filter(pl.col("segment").is_null() & pl.col("owner").is_null())
    by_segment = t.filter(pl.col("owner").is_null())
    rows = company if company.height else (by_segment if by_segment.height else t)
    overlap_start = pl.max_horizontal(pl.col("period_start"), pl.lit(start))
    overlap_end = pl.min_horizontal(pl.col("period_end"), pl.lit(end))
    rows = rows.with_columns(
        share=((overlap_end - overlap_start).dt.total_days() + 1)
        / ((pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1)
    ).with_columns(counted=pl.col("target_amount") * pl.col("share"))
    return float(rows["counted"].sum()), rows


# ---------------------------------------------------------------------------------------
# Accounts


def active_accounts(frames: Frames, day_: dt.date) -> pl.DataFrame:
    """Accounts with ARR > 0 at the end of the day (columns account_id, arr)."""
    return arr_by_account(frames.subscriptions, day_).filter(pl.col("arr") > 0)


def arr_then_now(frames: Frames, then: dt.date, now: dt.date) -> pl.DataFrame:
    """Accounts with ARR > 0 at `then` (the base), with their ARR then and now (account_id, arr_then, arr_now)."""
    base = active_accounts(frames, then).rename({"arr": "arr_then"})
    now_ = arr_by_account(frames.subscriptions, now).rename({"arr": "arr_now"})
    return base.join(now_, on="account_id", how="left").with_columns(pl.col("arr_now").fill_null(0.0))


def lifecycle_won(frames: Frames) -> pl.DataFrame:
    """Lifecycle rows with won_at filled, when empty, by the close date of the account's first won deal.

    Kept per frames: it depends on no period, and several metrics and handoffs start from it.
    """
    return derived(frames, "lifecycle_won", lambda: _lifecycle_won(frames))


def _lifecycle_won(frames: Frames) -> pl.DataFrame:
    first_won = (
        frames.opportunities.select("account_id", "state", "close_date")
        .filter((pl.col("state") == "won") & pl.col("account_id").is_not_null())
        .group_by("account_id")
        .agg(first_won=pl.col("close_date").min().cast(pl.Datetime("us")))
    )
    life = frames.lifecycle
    return (
        life.join(first_won, on="account_id", how="left")
        .with_columns(won_at=pl.coalesce(pl.col("won_at").cast(pl.Datetime("us")), pl.col("first_won")))
        .drop("first_won")
    )


def used() -> pl.Expr:
    """A usage row that shows use: events or active users above 0."""
    return (pl.col("events").fill_null(0) > 0) | (pl.col("active_users").fill_null(0) > 0)


def usage_between(frames: Frames, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Usage rows dated in [start, end], in table order (a slice when usage is in date order, as it mostly is)."""
    return table_between(frames, "usage", "date", start, end)


def usage_features(frames: Frames) -> pl.DataFrame:
    """Every feature that appears in the usage table, sorted (column feature); once per usage frame."""
    return column_distinct(frames, "usage", "feature")


def users_between(frames: Frames, start: dt.date, end: dt.date) -> float:
    """Σ active_users of usage rows dated in [start, end]."""
    return window_total(frames, "usage", "active_users", "date", start, end)


def account_codes(frames: Frames) -> pl.DataFrame:
    """Every account with a subscription, in account_id order, with `code`, its row number (columns code,
    account_id): usage rows are keyed by this integer, once per frames, for every as-of date."""
    subs = frames.subscriptions
    return derived(subs, "account_codes",
                   lambda: subs.select(pl.col("account_id").drop_nulls().unique().sort()).with_row_index("code"))


def codes_of(frames: Frames, ids: pl.Series) -> pl.Series:
    """The account code (account_codes) of each id, in order (named code; null: no subscription).

    Usage rows come in runs of one account (its features of a day): each run's id is hashed once, a
    fraction of the rows, and its code repeated over the run.
    """
    heads, run = runs_of(ids)
    coded = (heads.to_frame("account_id")
             .join(account_codes(frames), on="account_id", how="left", maintain_order="left")["code"])
    return coded.gather(run).rename("code")


def usage_codes(frames: Frames) -> pl.Series:
    """The account code of every usage row, in table order (null for an account without subscriptions)."""
    return derived(frames, "usage_codes", lambda: codes_of(frames, frames.usage["account_id"]))


def active_usage(frames: Frames, as_of: dt.date, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Usage rows dated in [start, end] of the accounts active at as_of, in table order, with `code`: the
    account's code (account_codes, in account_id order).

    Per-account tallies of usage (millions of rows) group and join by this integer, several times
    faster than by the text id. The rows of the READ_BACK_DAYS to as-of (where engagement, risk and
    adoption look) are picked once per frames and as-of and sliced per window.
    """
    low = min(start, as_of - dt.timedelta(days=READ_BACK_DAYS - 1))
    high = max(end, as_of)
    cols = ["date", "feature", "active_users", "events"]

    def make() -> pl.DataFrame:
        codes = active_codes(frames, as_of).select("account_id", "code")
        if reads_from_file(frames, "usage"):
            return rows_with_keys(frames, "usage", codes, "account_id", cols, window=("date", low, high))
        # Read whole: every usage row was coded once (a trend asks a dozen as-of dates); each as-of keeps
        # its window's rows of the accounts active then, an integer lookup instead of a join of text ids.
        coded = frames.usage.select(cols).with_columns(code=usage_codes(frames))
        return rows_between(coded, "date", low, high).filter(pl.col("code").is_in(codes["code"].drop_nulls().implode()))
    return rows_between(derived(frames, "active_usage", make, key=(as_of, low, high), limit=1), "date", start, end)


def active_codes(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    """active_accounts(as_of) with `code`, the key of active_usage (columns code, account_id, arr)."""
    return (active_accounts(frames, as_of).join(account_codes(frames), on="account_id", how="left",
                                                maintain_order="left").select("code", "account_id", "arr"))


def users_by_account(frames: Frames, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Σ active_users per account over usage rows dated in [start, end] (columns account_id, users)."""
    return (usage_between(frames, start, end)
            .group_by("account_id").agg(users=pl.col("active_users").cast(pl.Float64).sum()))


def fmt_day(d: dt.date) -> str:
    """A date as written in reasons (ISO)."""
    return d.isoformat()
