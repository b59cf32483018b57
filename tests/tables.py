"""Small canonical tables for golden tests, built from a few tuples."""
from __future__ import annotations

import datetime as dt

import polars as pl

D = dt.date


def subs(*rows: tuple[str, float] | tuple[str, float, dt.date | None]) -> pl.DataFrame:
    """Subscriptions from (account, mrr[, end]) rows, all started on 1 Jan 2023."""
    return pl.DataFrame(
        {"subscription_id": [str(i) for i in range(len(rows))], "account_id": [r[0] for r in rows],
         "start_date": [D(2023, 1, 1)] * len(rows), "end_date": [r[2] if len(r) > 2 else None for r in rows],
         "mrr": [r[1] for r in rows]},
        schema={"subscription_id": pl.String, "account_id": pl.String, "start_date": pl.Date, "end_date": pl.Date,
                "mrr": pl.Float64})


def usage(*rows: tuple[str, dt.date, str | None, int | None, int | None]) -> pl.DataFrame:
    """Usage from (account, date, feature, active_users, events) rows."""
    return pl.DataFrame(
        {"account_id": [r[0] for r in rows], "date": [r[1] for r in rows], "feature": [r[2] for r in rows],
         "active_users": [r[3] for r in rows], "events": [r[4] for r in rows]},
        schema={"account_id": pl.String, "date": pl.Date, "feature": pl.String, "active_users": pl.Int64,
                "events": pl.Int64})
