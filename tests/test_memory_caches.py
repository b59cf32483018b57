"""What the caches keep: values without rows, bounded result caches; the numbers never change."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.frames import frames_from_tables
from revops.metrics import compute
from revops.period import Period

D = dt.date


def _subscriptions() -> pl.DataFrame:
    return pl.DataFrame({
        "subscription_id": ["s1", "s2", "s3"], "account_id": ["A", "B", "C"],
        "start_date": [D(2024, 2, 1), D(2023, 12, 1), D(2024, 4, 1)],
        "end_date": [None, D(2024, 4, 15), None], "mrr": [100.0, 50.0, 20.0],
    })


def test_value_only_result_keeps_no_rows():
    """net_new_arr keeps its movements as rows; computed for its value only, the kept result has none."""
    f = frames_from_tables({"subscriptions": _subscriptions()})
    period = Period(D(2024, 4, 30), D(2024, 2, 1), D(2024, 4, 30))
    full = compute("net_new_arr", f, period)
    value_only = compute("net_new_arr", f, period, details=False)
    # new 100 (Feb) + new 20 (Apr) − churn 50 (Apr) = 70 MRR a month; × 12 = 840
    assert full.value == value_only.value == 840.0
    assert full.detail is not None and full.detail.height == 3
    assert value_only.detail is None
