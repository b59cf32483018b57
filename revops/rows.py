"""Layouts of big tables: the rows of a date range (by binary search when the table is in time order) and runs of
equal keys."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.memo import derived


def rows_between(df: pl.DataFrame, col: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    """The rows whose `col` day lies in [start, end], in table order: df.filter(between(col, start, end)).

    Tables exported in time order (usage by date, leads and deals by creation) hold a window as one
    contiguous block: then it is found by binary search instead of a scan of every row.
    """
    values = df[col]
    in_order = derived(df, "in_order", lambda: values.null_count() == 0 and values.is_sorted(), key=col)
    if not in_order or values.dtype not in (pl.Date, pl.Datetime("us")):
        return df.filter(pl.col(col).cast(pl.Date).is_between(start, end, closed="both"))
    if values.dtype == pl.Date:
        lo, hi = values.search_sorted(start, side="left"), values.search_sorted(end, side="right")
    else:  # a timestamp's day is in [start, end] when it is from start 00:00 to before the day after end
        lo = values.search_sorted(dt.datetime.combine(start, dt.time()), side="left")
        hi = values.search_sorted(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()), side="left")
    return df.slice(lo, max(hi - lo, 0))



def runs_of(ids: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Runs of equal consecutive values (a deal's stage changes, an account's usage of a day): the value of each
    run, and each row's run number.

    Looking up each run's key once, then repeating the answer over its rows, costs a fraction of a lookup per row.
    A null starts a run of its own.
    """
    starts = (ids != ids.shift(1)).fill_null(True)
    return ids.filter(starts), starts.cast(pl.UInt32).cum_sum() - 1


__all__ = ["rows_between", "runs_of"]
