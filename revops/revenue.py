"""Recurring revenue from subscriptions: MRR and ARR on a day, MRR at month ends, monthly movements."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.memo import derived
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
    """MRR of every account with an active subscription on `day` (columns account_id, mrr).

    Kept per subscriptions frame and day: retention, engagement, adoption and risk metrics (and each
    point of their trends) ask for the same few days.
    """
    return derived(subs, "mrr_by_account", lambda: (
        subs.filter(active_on(day))
        .group_by("account_id")
        .agg(pl.col("mrr").cast(pl.Float64).sum())
        .sort("account_id")
    ), key=day, limit=48)


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


def subscriptions_by_account(subs: pl.DataFrame) -> pl.DataFrame:
    """The subscriptions with a start date sorted by account_id, in table order within an account, with `code`:
    the account's number in account_id order, flagged sorted (columns account_id, start_date, end_date, mrr as
    Float64, code); kept per subscriptions frame.

    Tallies per account then group and join by a small integer instead of the text id, and per-account sums
    over the sorted codes run through the rows once instead of hashing them.
    """
    def make() -> pl.DataFrame:
        rows = (subs.select("account_id", "start_date", "end_date", pl.col("mrr").cast(pl.Float64))
                .filter(pl.col("start_date").is_not_null()).sort("account_id", maintain_order=True))
        return rows.with_columns(code=pl.col("account_id").rle_id().cast(pl.Int64).set_sorted())
    return derived(subs, "subscriptions_by_account", make)


def _accounts(rows: pl.DataFrame) -> pl.Series:
    """The account_id of each code of subscriptions_by_account rows (index = code)."""
    return rows.filter(pl.col("code") != pl.col("code").shift(1, fill_value=-1))["account_id"]


def covering(rows: pl.DataFrame, points: list[dt.date]) -> pl.DataFrame:
    """`rows` (with start_date, end_date) with the days of the sorted list `points` each is active on:
    points[first:stop], start_date <= day < end_date; rows active on none of them are left out (row order kept)."""
    days = pl.Series("day", points, dtype=pl.Date)
    rows = rows.filter(pl.col("start_date").is_not_null())
    return rows.with_columns(
        first=pl.Series(days.search_sorted(rows["start_date"], side="left")).cast(pl.Int64),
        stop=pl.Series(days.search_sorted(rows["end_date"].fill_null(_OPEN_END), side="left")).cast(pl.Int64),
    ).filter(pl.col("stop") > pl.col("first"))


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


def movements(subs: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Monthly MRR movements at each month end in [start, end] (the rows of classify_movements).

    A month end's movements depend only on the MRR then and one month end earlier, not on the window
    asked about, so they are classified once per subscriptions frame for every month end at which
    any can happen (see all_movements) and each window takes its slice: a trend of twelve windows
    costs one classification, not twelve.
    """
    return every_movement(subs).filter(pl.col("month_end").is_between(start, end))


def every_movement(subs: pl.DataFrame) -> pl.DataFrame:
    """all_movements, computed once per subscriptions frame."""
    return derived(subs, "all_movements", lambda: all_movements(subs))


def all_movements(subs: pl.DataFrame) -> pl.DataFrame:
    """classify_movements over every month end from the first subscription's start to the last start or end.

    MRR only changes at a start or an end, so no month end outside that span has a movement, and an
    account's MRR is the same at every month end between two of its starts or ends: it is summed once
    per such stretch (the same subscriptions, in row order, so the same floats as classify_movements)
    rather than once per month end. Accounts are integer codes in account_id order, and only the rows
    that moved are named; the classification is classify_movements' own expression, so both give the
    same rows.
    """
    rows = subscriptions_by_account(subs)
    if rows.height == 0:
        return pl.DataFrame(schema=_MOVEMENT_SCHEMA)
    last_event = max(d for d in (rows["start_date"].max(), rows["end_date"].max()) if d is not None)
    first_start: dt.date = rows["start_date"].min()  # type: ignore[assignment]
    points = month_ends(first_start, month_end(last_event))
    n = len(points)
    accounts = _accounts(rows)
    # Each subscription covers the month ends first .. stop - 1 (indexes into points); rows by account.
    spans = covering(rows, points).select("code", "mrr", "first", "stop")
    # The month ends where an account's set of covering subscriptions can change: its starts and ends, as
    # one sorted integer per (account, month end) pair, key = code × n + month end index.
    cuts = (
        pl.concat([spans.select(key=pl.col("code") * n + pl.col("first")),
                   spans.filter(pl.col("stop") < n).select(key=pl.col("code") * n + pl.col("stop"))])
        .sort("key").filter(pl.col("key") != pl.col("key").shift(1, fill_value=-1))
    )
    keys = cuts["key"]
    # MRR from each cut to the next: the subscriptions covering it, summed in row order. A subscription
    # covers a run of its account's cuts, found by binary search in the sorted keys (no join).
    lo = pl.Series(keys.search_sorted(spans["code"] * n + spans["first"], side="left")).cast(pl.Int64)
    hi = pl.Series(keys.search_sorted(spans["code"] * n + spans["stop"], side="left")).cast(pl.Int64)
    level = (spans.select("mrr", cut=pl.int_ranges(lo, hi)).explode("cut")
             .group_by("cut").agg(pl.col("mrr").sum()))
    mrr = pl.zeros(keys.len(), dtype=pl.Float64, eager=True).scatter(level["cut"], level["mrr"])
    # Each cut beside the stretch before it (none before an account's first cut: MRR 0). Only a change
    # can be a movement (every kind compares unequal amounts), so the rest is dropped early.
    same_account = pl.col("code").shift(1) == pl.col("code")
    changed = (
        cuts.select(code=pl.col("key") // n, at=pl.col("key") % n, mrr=mrr)
        .with_columns(prev_mrr=pl.when(same_account).then(pl.col("mrr").shift(1)).otherwise(pl.lit(0.0)))
        .filter(pl.col("mrr") != pl.col("prev_mrr"))
    )
    # A paying subscription first shows at the month end of its start (index `first`), unless it ends
    # before then, and such a subscription has no span: first_active_month_end as an index, per code.
    paid = spans.filter(pl.col("mrr") > 0).group_by("code", maintain_order=True).agg(first_active=pl.col("first").min())
    first_paid = pl.repeat(None, accounts.len(), dtype=pl.Int64, eager=True).scatter(paid["code"], paid["first_active"])
    moved = (
        changed.with_columns(first_active=first_paid.gather(changed["code"]))
        .with_columns(paid_before=pl.col("first_active") < pl.col("at"))
        .with_columns(movement=_movement())
        .filter(pl.col("movement").is_not_null())
        .sort(pl.col("at") * accounts.len() + pl.col("code"))  # month end, then account_id
    )
    return moved.select(
        account_id=accounts.gather(moved["code"]), month_end=pl.Series(points, dtype=pl.Date).gather(moved["at"]),
        prev_mrr="prev_mrr", mrr="mrr", movement="movement", amount=(pl.col("mrr") - pl.col("prev_mrr")).abs())


def _movement() -> pl.Expr:
    """The one place a month-over-month change of MRR gets its name (null: no movement)."""
    return (
        pl.when((pl.col("prev_mrr") <= 0) & (pl.col("mrr") > 0) & ~pl.col("paid_before").fill_null(False))
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

    # classified: each month-over-month change named
    classified = with_history.with_columns(movement=_movement())

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


__all__ = [
    "MOVEMENTS",
    "MOVEMENT_SIGN",
    "active_on",
    "all_movements",
    "arr_at",
    "arr_by_account",
    "classify_movements",
    "covering",
    "every_movement",
    "first_active_month_end",
    "movements",
    "mrr_at_month_ends",
    "mrr_by_account",
    "net_mrr_change",
    "subscriptions_by_account",
]
