"""Recurring revenue from subscriptions: MRR and ARR on a day, MRR at month ends, monthly movements."""
from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import OrderedDict

import polars as pl

from revops.period import add_months, month_end, month_ends

# An open subscription (empty end_date) behaves as if it ended after any day we ask about.
_OPEN_END = dt.date(9999, 12, 31)

MOVEMENTS = ("new", "reactivation", "expansion", "contraction", "churn")
# Sign of each movement in net new MRR: amounts are all positive, churn and contraction subtract.
MOVEMENT_SIGN: dict[str, int] = {"new": 1, "reactivation": 1, "expansion": 1, "contraction": -1, "churn": -1}

_MOVEMENT_SCHEMA = {
    "account_id": pl.String, "month_end": pl.Date, "prev_mrr": pl.Float64, "mrr": pl.Float64,
    "movement": pl.String, "amount": pl.Float64,
}


def active_on(day: dt.date) -> pl.Expr:
    """True for subscriptions active on `day`: start_date <= day < end_date (empty end = open)."""
    return (pl.col("start_date") <= day) & (pl.col("end_date").is_null() | (pl.col("end_date") > day))


def mrr_by_account(subs: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """MRR of every account with an active subscription on `day` (columns account_id, mrr)."""
    return (
        subs.filter(active_on(day))
        .group_by("account_id")
        .agg(pl.col("mrr").cast(pl.Float64).sum())
        .sort("account_id")
    )


def arr_at(subs: pl.DataFrame, day: dt.date) -> float:
    """ARR(day) = 12 × Σ MRR of the subscriptions active on `day`."""
    return 12.0 * float(subs.filter(active_on(day))["mrr"].cast(pl.Float64).sum())


def arr_by_account(subs: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """ARR of every account active on `day` (columns account_id, arr)."""
    return mrr_by_account(subs, day).select("account_id", (12.0 * pl.col("mrr")).alias("arr"))


def mrr_at_month_ends(subs: pl.DataFrame, ends: list[dt.date]) -> pl.DataFrame:
    """MRR of every account at every given month end (columns account_id, month_end, mrr; 0 when inactive).

    Each subscription covers the month ends m with start_date <= m < end_date: a contiguous
    run of the sorted list, found by binary search, so the work is one row per covered month
    end rather than a cross join of subscriptions with months; sums stay exact (no running totals).
    """
    points = pl.Series("month_end", sorted(set(ends)), dtype=pl.Date)
    accounts = subs.select(pl.col("account_id").unique().sort())
    if points.is_empty() or accounts.is_empty():
        return pl.DataFrame(schema={"account_id": pl.String, "month_end": pl.Date, "mrr": pl.Float64})
    covered = (
        subs.select(
            "account_id",
            pl.col("mrr").cast(pl.Float64),
            # index of the first month end on or after the start: the first one the subscription covers
            first=pl.Series(points.search_sorted(subs["start_date"], side="left")).cast(pl.Int64),
            # index of the first month end on or after the (exclusive) end: the first one it no longer covers
            stop=pl.Series(points.search_sorted(subs["end_date"].fill_null(_OPEN_END), side="left")).cast(pl.Int64),
        )
        .filter(pl.col("stop") > pl.col("first"))
        .with_columns(idx=pl.int_ranges("first", "stop"))
        .explode("idx")
        .group_by("account_id", "idx")
        .agg(pl.col("mrr").sum())
    )
    grid = accounts.join(pl.DataFrame({"idx": pl.int_range(0, points.len(), eager=True),
                                       "month_end": points}), how="cross")
    return (
        grid.join(covered, on=["account_id", "idx"], how="left")
        .select("account_id", "month_end", pl.col("mrr").fill_null(0.0))
        .sort("account_id", "month_end")
    )


def first_active_month_end(subs: pl.DataFrame) -> pl.DataFrame:
    """The first month end at which each account had a paying subscription (columns account_id, first_active).

    A subscription first shows at the end of its start month, unless it ends before then.
    """
    return (
        subs.filter(pl.col("mrr") > 0)
        .with_columns(me=pl.col("start_date").dt.month_end())
        .filter(pl.col("end_date").is_null() | (pl.col("end_date") > pl.col("me")))
        .group_by("account_id")
        .agg(first_active=pl.col("me").min())
    )


# Several metrics (and each point of their trends) ask for the same window's movements of the
# same frame: keep the last few, keyed on the frame's identity, checked through a weak reference.
_MEMO: OrderedDict[tuple[int, dt.date, dt.date], tuple[weakref.ref[pl.DataFrame], pl.DataFrame]] = OrderedDict()
_MEMO_SIZE = 32
_MEMO_LOCK = threading.Lock()


def movements(subs: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Monthly MRR movements at each month end in [start, end] (see classify_movements); memoised per frame."""
    key = (id(subs), start, end)
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
        if hit is not None and hit[0]() is subs:
            _MEMO.move_to_end(key)
            return hit[1]
    out = classify_movements(subs, start, end)
    with _MEMO_LOCK:
        for stale in [k for k, (ref, _) in _MEMO.items() if ref() is None]:
            del _MEMO[stale]
        _MEMO[key] = (weakref.ref(subs), out)
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return out


def classify_movements(subs: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Monthly MRR movements at each month end in [start, end], one row per account and month that moved.

    Columns account_id, month_end, prev_mrr, mrr, movement, amount. Classification (dbt
    mrr-playbook, upgrade/downgrade = expansion/contraction), on month ends:
    new = previous 0 and no earlier month end with MRR; reactivation = previous 0 and MRR at
    some earlier month end (history is read at month-end granularity, like the playbook, so a
    subscription that starts and ends inside one month never counts); expansion / contraction =
    both > 0, up / down; churn = previous > 0, now 0. Amounts are positive MRR deltas.
    """
    window = month_ends(start, end)
    if not window:
        return pl.DataFrame(schema=_MOVEMENT_SCHEMA)
    before_first = month_end(add_months(window[0], -1))

    # mrr_by_month: every account's MRR at the month end before the window and at each one in it
    by_month = mrr_at_month_ends(subs, [before_first, *window])

    # with_previous: the MRR one month end earlier, side by side
    with_previous = by_month.sort("account_id", "month_end").with_columns(
        prev_mrr=pl.col("mrr").shift(1).over("account_id")
    ).filter(pl.col("month_end") > before_first)

    # with_history: whether the account ever paid at an earlier month end (new vs reactivation)
    with_history = with_previous.join(first_active_month_end(subs), on="account_id", how="left").with_columns(
        paid_before=pl.col("first_active") < pl.col("month_end")
    )

    # classified: the one place a month-over-month change gets its name
    classified = with_history.with_columns(
        movement=pl.when((pl.col("prev_mrr") <= 0) & (pl.col("mrr") > 0) & ~pl.col("paid_before").fill_null(False))
        .then(pl.lit("new"))
        .when((pl.col("prev_mrr") <= 0) & (pl.col("mrr") > 0))
        .then(pl.lit("reactivation"))
        .when((pl.col("prev_mrr") > 0) & (pl.col("mrr") <= 0))
        .then(pl.lit("churn"))
        .when((pl.col("prev_mrr") > 0) & (pl.col("mrr") > pl.col("prev_mrr")))
        .then(pl.lit("expansion"))
        .when((pl.col("prev_mrr") > 0) & (pl.col("mrr") < pl.col("prev_mrr")))
        .then(pl.lit("contraction"))
        .otherwise(None)
    )

    # final: rows that moved, with the delta as a positive amount
    return (
        classified.filter(pl.col("movement").is_not_null())
        .with_columns(amount=(pl.col("mrr") - pl.col("prev_mrr")).abs())
        .select(list(_MOVEMENT_SCHEMA))
        .sort("month_end", "account_id")
    )


def net_mrr_change(moves: pl.DataFrame) -> float:
    """Σ new + reactivation + expansion − contraction − churn of a movements frame."""
    sign = pl.col("movement").replace_strict(MOVEMENT_SIGN, return_dtype=pl.Float64)
    return float(moves.select((sign * pl.col("amount")).sum()).item())


__all__ = ["MOVEMENTS", "MOVEMENT_SIGN", "active_on", "arr_at", "arr_by_account", "first_active_month_end",
           "classify_movements", "movements", "mrr_at_month_ends", "mrr_by_account", "net_mrr_change"]
