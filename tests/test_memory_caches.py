"""What the caches keep: values without rows, bounded result caches; the numbers never change."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops import memo
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


class _Owner:
    """Something derived values can hang on (any object with a __dict__)."""


def test_transient_values_go_when_the_outermost_scope_ends():
    """Inside nested scopes a transient value is reused; it is gone once the outer scope ends, others stay."""
    owner, calls = _Owner(), []

    def make() -> int:
        calls.append(1)
        return len(calls)
    with memo.scope():
        assert memo.derived(owner, "big", make, transient=True) == 1
        with memo.scope():
            assert memo.derived(owner, "big", make, transient=True) == 1  # reused, not made again
        assert memo.derived(owner, "big", make, transient=True) == 1  # the inner scope dropped nothing
        memo.derived(owner, "small", lambda: "kept")
    assert memo.derived(owner, "small", lambda: "made again") == "kept"
    assert memo.derived(owner, "big", make, transient=True) == 2  # made again after the scope


def test_transient_values_outside_a_scope_are_kept():
    """Without a scope (the metrics command) a transient value is kept like any other."""
    owner = _Owner()
    assert memo.derived(owner, "big", lambda: 1, transient=True) == 1
    assert memo.derived(owner, "big", lambda: 2, transient=True) == 1
