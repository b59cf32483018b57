"""Trend lines of the recurring-revenue metrics (and time to value) in one pass: each subscription is placed
once among all the days a trend asks about, instead of filtering every subscription again for every point."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from revops.frames import Frames
from revops.memo import derived
from revops.metrics.common import (day, finite_value, fractional_days, lifecycle_won, ratio_value, spend_between,
                                   total)
from revops.metrics.north_star import last_closed_quarters
from revops.metrics.registry import series
from revops.period import Period, month_ends, years_before
from revops.revenue import MOVEMENT_SIGN, covering, every_movement, subscriptions_by_account

_ONE_DAY = dt.timedelta(days=1)


# ---------------------------------------------------------------------------------------
# ARR of the whole company at many days


def arr_on_days(subs: pl.DataFrame, days: Sequence[dt.date]) -> dict[dt.date, float]:
    """arr_at(subs, day) for every day: 12 × Σ MRR of the subscriptions active that day (rel 1e-15 of it).

    Subscriptions covering the same run of days are summed once together, so the work is one pass over
    the subscriptions whatever the number of days.
    """
    points = sorted(set(days))
    return derived(subs, "arr_on_days", lambda: _arr_on_days(subs, points), key=tuple(points), limit=8)


def _arr_on_days(subs: pl.DataFrame, points: list[dt.date]) -> dict[dt.date, float]:
    runs = (covering(subs.select("start_date", "end_date", pl.col("mrr").cast(pl.Float64)), points)
            .group_by("first", "stop").agg(pl.col("mrr").sum()))
    at = pl.DataFrame({"at": range(len(points))}, schema={"at": pl.Int64})
    per_day = (
        runs.join(at, how="cross").filter((pl.col("at") >= pl.col("first")) & (pl.col("at") < pl.col("stop")))
        .group_by("at").agg(pl.col("mrr").sum())
    )
    mrr = dict(zip(per_day["at"].to_list(), per_day["mrr"].to_list()))
    return {d: 12.0 * float(mrr.get(i, 0.0)) for i, d in enumerate(points)}


# ---------------------------------------------------------------------------------------
# Accounts' ARR twelve months apart (NRR, GRR, logo churn) and accounts active on a day (ARPA)


@dataclass(frozen=True)
class Retention:
    """The accounts paying on `then` (the base) against `now`, as arr_then_now counts them."""

    base: int
    arr_then: float
    arr_now: float
    arr_kept: float  # Σ min(ARR now, ARR then)
    churned: int  # base accounts with no ARR now


@dataclass(frozen=True)
class Active:
    """The accounts with ARR > 0 on a day, as active_accounts counts them."""

    accounts: int
    arr: float


def _account_arr(subs: pl.DataFrame, points: list[dt.date]) -> list[pl.Series]:
    """Each account's ARR (12 × Σ MRR of its active subscriptions) on each of the sorted days: one Series per
    day, indexed by account code (subscriptions_by_account), 0 for an account with nothing active.

    The same subscriptions as mrr_by_account sums (equal to it within rounding); over the sorted account
    codes, the sums run through the rows once instead of hashing millions of (account, day) pairs.
    """
    rows = subscriptions_by_account(subs)
    accounts = int(rows["code"][-1]) + 1 if rows.height else 0
    spans = (covering(rows.select("code", "start_date", "end_date", "mrr"), points)
             .select("code", "mrr", "first", "stop"))
    out = []
    for at in range(len(points)):
        on_day = (spans.filter((pl.col("first") <= at) & (pl.col("stop") > at))
                  .group_by("code").agg(pl.col("mrr").sum()))
        arr = pl.zeros(accounts, dtype=pl.Float64, eager=True)
        out.append(arr.scatter(on_day["code"], 12.0 * on_day["mrr"]) if on_day.height else arr)
    return out


def retention_on(subs: pl.DataFrame, pairs: Sequence[tuple[dt.date, dt.date]]
                 ) -> tuple[dict[tuple[dt.date, dt.date], Retention], dict[dt.date, Active]]:
    """For each (then, now): the retention of the accounts paying on then; for each now: the accounts active."""
    asked = tuple(dict.fromkeys(pairs))
    return derived(subs, "retention_on", lambda: _retention_on(subs, asked), key=asked, limit=8)


def _retention_on(subs: pl.DataFrame, pairs: tuple[tuple[dt.date, dt.date], ...]
                  ) -> tuple[dict[tuple[dt.date, dt.date], Retention], dict[dt.date, Active]]:
    points = sorted({d for pair in pairs for d in pair})
    arr = dict(zip(points, _account_arr(subs, points)))
    retention: dict[tuple[dt.date, dt.date], Retention] = {}
    for then, now in pairs:
        # The base: accounts paying then; an account with nothing active now has ARR 0 now (arr_then_now).
        base = pl.DataFrame({"arr_then": arr[then], "arr_now": arr[now]}).filter(pl.col("arr_then") > 0)
        facts = base.select(
            base=pl.len(), arr_then=pl.col("arr_then").sum(), arr_now=pl.col("arr_now").sum(),
            arr_kept=pl.min_horizontal("arr_now", "arr_then").sum(), churned=(pl.col("arr_now") <= 0).sum()).row(0)
        retention[(then, now)] = Retention(int(facts[0]), float(facts[1]), float(facts[2]), float(facts[3]),
                                           int(facts[4]))
    active: dict[dt.date, Active] = {}
    for _, now in pairs:
        paying = arr[now].filter(arr[now] > 0)
        active[now] = Active(paying.len(), float(paying.sum()) if paying.len() else 0.0)
    return retention, active


def _year_pairs(periods: list[Period]) -> list[tuple[dt.date, dt.date]]:
    """(12 months before as-of, as-of) of each period."""
    return [(years_before(p.as_of), p.as_of) for p in periods]


# ---------------------------------------------------------------------------------------
# Movements summed per window


def _movement_sums(subs: pl.DataFrame) -> pl.DataFrame:
    """Σ amount of each kind of movement at each month end (columns month_end, movement, amount)."""
    return derived(subs, "movement_sums", lambda: every_movement(subs).group_by("month_end", "movement").agg(
        pl.col("amount").sum()).sort("month_end", "movement"))


def _window_sums(subs: pl.DataFrame, periods: list[Period], kinds: dict[str, int]) -> list[float]:
    """Σ sign × amount of the movements of `kinds` (kind -> sign) at the month ends in each period's window."""
    sums = _movement_sums(subs).filter(pl.col("movement").is_in(list(kinds)))
    signed = sums.select("month_end", value=pl.col("movement").replace_strict(kinds, return_dtype=pl.Float64)
                         * pl.col("amount"))
    return [float(signed.filter(pl.col("month_end").is_between(p.start, p.end))["value"].sum()) for p in periods]


def _new_customers(subs: pl.DataFrame, periods: list[Period]) -> list[int]:
    """How many accounts have a `new` movement at a month end in each period's window."""
    new = derived(subs, "new_movers", lambda: every_movement(subs).filter(pl.col("movement") == "new")
                  .select("month_end", code=pl.col("account_id").rank("dense")))
    windows = pl.DataFrame(
        [(k, end) for k, p in enumerate(periods) for end in month_ends(p.start, p.end)],
        schema={"k": pl.Int64, "month_end": pl.Date}, orient="row")
    counted = windows.join(new, on="month_end", how="inner").group_by("k").agg(pl.col("code").n_unique())
    by_k = dict(zip(counted["k"].to_list(), counted["code"].to_list()))
    return [int(by_k.get(k, 0)) for k in range(len(periods))]


# ---------------------------------------------------------------------------------------
# The series (values exactly where north_star.py / operational.py give one, for the same reasons)


@series("arr")
def arr_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """ARR at each period's as-of."""
    subs = frames.subscriptions
    if subs.height == 0:
        return [None] * len(periods)
    arr = arr_on_days(subs, [p.as_of for p in periods])
    return [finite_value(arr[p.as_of]) for p in periods]


@series("nrr")
def nrr_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """NRR at each period's as-of."""
    retention, _ = retention_on(frames.subscriptions, _year_pairs(periods))
    return [ratio_value(r.arr_now, r.arr_then) for r in map(retention.__getitem__, _year_pairs(periods))]


@series("grr")
def grr_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """GRR at each period's as-of."""
    retention, _ = retention_on(frames.subscriptions, _year_pairs(periods))
    return [ratio_value(r.arr_kept, r.arr_then) for r in map(retention.__getitem__, _year_pairs(periods))]


@series("ltv_to_cac")
def ltv_to_cac_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """LTV : CAC at each period."""
    subs = frames.subscriptions
    pairs = _year_pairs(periods)
    retention, active = retention_on(subs, pairs)
    new_customers = _new_customers(subs, periods)
    margin = frames.settings.gross_margin
    out: list[float | None] = []
    for p, pair, new in zip(periods, pairs, new_customers):
        r, a = retention[pair], active[p.as_of]
        spend = spend_between(frames, p.start, p.end)
        spent = total(spend, "amount")
        arpa = a.arr / 12 / a.accounts if a.accounts else None
        monthly_churn = r.churned / r.base / 12 if r.base else None
        ltv = arpa * margin / monthly_churn if arpa is not None and monthly_churn else None
        cac = spent / new if spend.height and new else None
        if a.accounts == 0 or r.base == 0 or r.churned == 0 or spent <= 0:
            out.append(None)
        else:
            out.append(ratio_value(ltv, cac))
    return out


@series("magic_number")
def magic_number_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Magic number at each period's as-of."""
    subs = frames.subscriptions
    quarters = [last_closed_quarters(p.as_of, p.fiscal_start_month) for p in periods]
    arr = arr_on_days(subs, [d for (_, q_end), (_, b_end) in quarters for d in (q_end, b_end)])
    out: list[float | None] = []
    for (_, q_end), (b_start, b_end) in quarters:
        spend = total(spend_between(frames, b_start, b_end), "amount")
        out.append(None if subs.height == 0 else ratio_value(arr[q_end] - arr[b_end], spend))
    return out


@series("net_new_arr")
def net_new_arr_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Net new ARR in each period's window."""
    subs = frames.subscriptions
    if subs.height == 0:
        return [None] * len(periods)
    net = _window_sums(subs, periods, MOVEMENT_SIGN)
    return [finite_value(12.0 * v) if month_ends(p.start, p.end) else None for p, v in zip(periods, net)]


@series("expansion_rate")
def expansion_rate_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Expansion rate in each period's window."""
    subs = frames.subscriptions
    if subs.height == 0:
        return [None] * len(periods)
    expansion = _window_sums(subs, periods, {"expansion": 1})
    arr = arr_on_days(subs, [p.start - _ONE_DAY for p in periods])
    return [ratio_value(12.0 * v, arr[p.start - _ONE_DAY]) for p, v in zip(periods, expansion)]


# ---------------------------------------------------------------------------------------
# Customers after the sale


def _days_to_value(frames: Frames) -> pl.DataFrame:
    """Every customer's signature-to-first-value time with the day of its first value, sorted by that day
    (columns day, days_to_value; rows without either left out, as the median leaves them out)."""
    return derived(frames, "days_to_value_by_day", lambda: (
        lifecycle_won(frames).select(day=day("first_value_at"),
                                     days_to_value=fractional_days("won_at", "first_value_at"))
        .drop_nulls().sort("day")))


@series("time_to_value_days")
def time_to_value_days_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Median time to value of the customers whose first value falls in each period's window."""
    rows = _days_to_value(frames)
    lo = rows["day"].search_sorted(pl.Series([p.start for p in periods], dtype=pl.Date), side="left").to_list()
    hi = rows["day"].search_sorted(pl.Series([p.end for p in periods], dtype=pl.Date), side="right").to_list()
    return [finite_value(rows["days_to_value"].slice(a, b - a).median()) if b > a else None  # type: ignore[arg-type]
            for a, b in zip(lo, hi)]
