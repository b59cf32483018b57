"""What the caches keep: values without rows, bounded result caches; the numbers never change."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

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


def _frame(rows: int) -> pl.DataFrame:
    """A frame of `rows` Int64 values: 8 bytes a row."""
    return pl.DataFrame({"x": pl.int_range(rows, eager=True)})


def test_derived_frames_are_trimmed_least_recently_used_first(monkeypatch):
    """After a computation, derived frames beyond the budget go, the least recently used first."""
    monkeypatch.setattr(memo, "BUDGET_BYTES", 2 * 8 * 100_000)  # room for two frames of 100,000 rows
    a, b, c = _Owner(), _Owner(), _Owner()
    for owner in (a, b):
        with memo.scope():
            memo.derived(owner, "rows", lambda: _frame(100_000))
    with memo.scope():
        memo.derived(a, "rows", lambda: _frame(1))  # a used again: b is now the least recently used
        memo.derived(c, "rows", lambda: _frame(100_000))
    assert memo.derived(a, "rows", lambda: _frame(2)).height == 100_000
    assert memo.derived(c, "rows", lambda: _frame(2)).height == 100_000
    assert memo.derived(b, "rows", lambda: _frame(2)).height == 2  # trimmed, made again


def test_nothing_is_trimmed_during_a_computation(monkeypatch):
    """Inside one computation every derived frame stays, however big: the trim waits for its end."""
    monkeypatch.setattr(memo, "BUDGET_BYTES", 8 * 100_000)  # room for one frame
    a, b = _Owner(), _Owner()
    with memo.scope():
        memo.derived(a, "rows", lambda: _frame(100_000))
        memo.derived(b, "rows", lambda: _frame(100_000))
        assert memo.derived(a, "rows", lambda: _frame(2)).height == 100_000
    assert memo.derived(a, "rows", lambda: _frame(2)).height == 100_000  # a was used last: b went
    assert memo.derived(b, "rows", lambda: _frame(2)).height == 2


def test_results_are_bounded_by_the_bytes_of_their_frames():
    """Past the byte budget the oldest results go; the newest is kept even when bigger than the budget."""
    from ui.state import Results
    results = Results(max_entries=10, budget_bytes=2 * 8 * 1000)  # two results of 1,000 rows
    made: list[str] = []

    def make(name: str, rows: int) -> Callable[[], pl.DataFrame]:
        def run() -> pl.DataFrame:
            made.append(name)
            return _frame(rows)
        return run
    results.get(("a",), make("a", 1000))
    results.get(("b",), make("b", 1000))
    results.get(("a",), make("a", 1000))  # kept: not made again, and now the most recent
    results.get(("c",), make("c", 1000))  # over budget: b (least recently used) goes
    assert made == ["a", "b", "c"]
    results.get(("b",), make("b", 1000))
    assert made == ["a", "b", "c", "b"]
    results.get(("huge",), make("huge", 10_000))  # alone over the budget: kept, everything older goes
    results.get(("huge",), make("huge", 10_000))
    assert made[-1] == "huge" and made.count("huge") == 1
    assert results.total_bytes == 8 * 10_000


def test_results_are_counted_too():
    """At most max_entries results are kept, whatever their size."""
    from ui.state import Results
    results = Results(max_entries=2, budget_bytes=2**40)
    made: list[int] = []
    for key in (1, 2, 3, 1):
        results.get((key,), lambda key=key: made.append(key))
    assert made == [1, 2, 3, 1]  # 1 went when 3 came


def test_threads_asking_for_one_value_make_it_once():
    """Computations running side by side that need the same derived value wait for one maker and share its value."""
    import threading
    import time
    owner, calls = _Owner(), []
    started = threading.Barrier(4)

    def make() -> int:
        calls.append(1)
        time.sleep(0.2)  # long enough that every other thread asks while it is being made
        return 42

    def ask(out: list[int]) -> None:
        started.wait()
        with memo.scope():
            out.append(memo.derived(owner, "costly", make))
    got: list[int] = []
    threads = [threading.Thread(target=ask, args=(got,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [42, 42, 42, 42]
    assert len(calls) == 1


def test_nothing_is_trimmed_while_another_thread_computes(monkeypatch):
    """A computation ending in one thread does not trim the frames another thread's running computation made."""
    import threading
    monkeypatch.setattr(memo, "BUDGET_BYTES", 8 * 100_000)  # room for one frame
    a, b = _Owner(), _Owner()
    inside, done = threading.Event(), threading.Event()

    def long_computation() -> None:
        with memo.scope():
            memo.derived(a, "rows", lambda: _frame(100_000))
            inside.set()
            done.wait(5)
    worker = threading.Thread(target=long_computation)
    worker.start()
    inside.wait(5)
    with memo.scope():  # a short computation ends while the long one still runs: over budget, yet no trim
        memo.derived(b, "rows", lambda: _frame(100_000))
    assert memo.derived(a, "rows", lambda: _frame(2)).height == 100_000
    done.set()
    worker.join()

