"""Narrowed reads (revops.reads): what comes from the file equals what the frames give, row for row, in order."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops.frames import file_reader, open_frames
from revops.reads import (column_distinct, column_n_unique, rows_from_file, rows_with_keys, table_between,
                          table_height, window_total)
from revops.schema import TABLES


@pytest.fixture
def whole(demo_file):
    """Frames of the demo file with every table read."""
    frames = open_frames(demo_file, read_only=True)
    for name in TABLES:
        frames.table(name)
    return frames


@pytest.fixture
def lazy(demo_file):
    """Frames of the demo file with no table read yet."""
    return open_frames(demo_file, read_only=True)


def _keys(frames, n: int) -> pl.DataFrame:
    """Every other deal id among the first n, with a code (as the funnel keys them)."""
    ids = frames.opportunities["opportunity_id"].head(n).gather_every(2)
    return pl.DataFrame({"opportunity_id": ids}).with_row_index("code")


def test_rows_with_keys_from_the_file_equal_the_join_in_table_order(whole, lazy):
    """The stage-history rows of some deals, joined in the file, are the Polars join's rows, columns and order."""
    keys = _keys(whole, 400)
    expected = rows_with_keys(whole, "stage_history", keys, "opportunity_id", ["stage", "changed_at"])
    with rows_from_file():
        got = rows_with_keys(lazy, "stage_history", keys, "opportunity_id", ["stage", "changed_at"])
    assert expected.height > 200 and expected.columns == ["stage", "changed_at", "code"]
    assert got.equals(expected.with_columns(pl.col("stage").cast(pl.String)))
    assert file_reader(lazy, "stage_history") is not None  # the table itself was never read


def test_rows_with_keys_of_a_window_keep_only_the_window(whole, lazy):
    """With a window, only rows dated in it come, from the file as from the frame."""
    end = whole.usage["date"].max()
    start = end - dt.timedelta(days=20)
    accounts = whole.usage["account_id"].unique().sort().head(50)
    keys = pl.DataFrame({"account_id": accounts}).with_row_index("code")
    window = ("date", start, end)
    expected = rows_with_keys(whole, "usage", keys, "account_id", ["date", "active_users"], window=window)
    with rows_from_file():
        got = rows_with_keys(lazy, "usage", keys, "account_id", ["date", "active_users"], window=window)
    assert expected.height > 0 and expected["date"].min() >= start
    assert got.equals(expected)


def test_window_total_from_the_file_equals_the_frame_sum(whole, lazy):
    """Σ active users of a window summed in the file equals the frame's sum; an empty window gives 0.0."""
    end = whole.usage["date"].max()
    start = end - dt.timedelta(days=27)
    expected = float(whole.usage.filter(pl.col("date").is_between(start, end))["active_users"].sum())
    with rows_from_file():
        assert window_total(lazy, "usage", "active_users", "date", start, end) == expected > 0
        assert window_total(lazy, "usage", "active_users", "date", dt.date(1990, 1, 1), dt.date(1990, 2, 1)) == 0.0
    assert window_total(whole, "usage", "active_users", "date", start, end) == expected


def test_distinct_values_and_heights_from_the_file_equal_the_frames(whole, lazy):
    """Distinct features (and their count, a missing one counted) and row counts agree with the frames."""
    with rows_from_file():
        got = (column_distinct(lazy, "usage", "feature"), column_n_unique(lazy, "usage", "feature"),
               {t: table_height(lazy, t) for t in TABLES})
    expected = (column_distinct(whole, "usage", "feature"), column_n_unique(whole, "usage", "feature"),
                {t: whole.table(t).height for t in TABLES})
    assert got[0].equals(expected[0].with_columns(pl.col("feature").cast(pl.String))) and got[0].height > 1
    assert got[1] == expected[1] == whole.usage["feature"].n_unique()
    assert got[2] == expected[2]


def test_a_window_read_once_serves_the_windows_inside_it(lazy):
    """After one window of usage is read from the file, a window inside it is a slice of that read, not a query."""
    with rows_from_file():
        end = lazy.column_max("usage", "date")
        first = table_between(lazy, "usage", "date", end - dt.timedelta(days=10), end)
        reader = file_reader(lazy, "usage")
        asked = []
        original = reader.query
        reader.query = lambda sql: asked.append(sql) or original(sql)  # type: ignore[method-assign]
        inner = table_between(lazy, "usage", "date", end - dt.timedelta(days=40), end - dt.timedelta(days=30))
    assert first.height > 0 and inner.height > 0
    assert asked == []


def test_rules_counted_in_sql_agree_with_the_frame_on_edge_cells(tmp_path):
    """Negative, NaN, out-of-range, before-creation and equal-date cells count the same in SQL as on the frame."""
    from revops import store
    from revops.metrics.diagnostic import cell_quality
    D, T = dt.date, dt.datetime
    tables = {
        # employees: -1 invalid, 0 valid, null not filled
        "accounts": pl.DataFrame({"account_id": ["a", "b", "c"], "employees": [-1, 0, None]}),
        # response before creation invalid; response without creation valid (nothing to compare)
        "leads": pl.DataFrame({"lead_id": ["1", "2", "3"],
                               "created_at": [T(2024, 1, 2), T(2024, 1, 2), None],
                               "first_response_at": [T(2024, 1, 1), T(2024, 1, 3), T(2024, 1, 1)]}),
        # health NaN (outside 0-100), 100 valid, 101 invalid
        "lifecycle": pl.DataFrame({"account_id": ["a", "b", "c"], "health_score": [float("nan"), 100.0, 101.0],
                                   "csat": [None, -0.5, 0.0]}),
        # end on the start day is invalid; a missing end is not expected
        "subscriptions": pl.DataFrame({"subscription_id": ["s1", "s2", "s3"], "account_id": ["a"] * 3,
                                       "start_date": [D(2024, 1, 1)] * 3, "end_date": [D(2024, 1, 1), D(2024, 2, 1), None],
                                       "mrr": [-5.0, 0.0, 10.0]}),
        "targets": pl.DataFrame({"period_start": [D(2024, 1, 1), D(2024, 1, 1)],
                                 "period_end": [D(2024, 1, 1), D(2023, 12, 31)], "target_amount": [1.0, -1.0]}),
    }
    path = tmp_path / "edges.duckdb"
    with store.connect(path) as con:
        store.replace_tables(con, tables)
    lazy = open_frames(path, read_only=True)
    whole = open_frames(path, read_only=True)
    for name in TABLES:
        whole.table(name)
    got, expected = cell_quality(lazy), cell_quality(whole)
    assert got.equals(expected)
    valid = {(r["table"], r["column"]): (r["filled"], r["valid"]) for r in got.iter_rows(named=True)}
    assert valid[("accounts", "employees")] == (2, 1)
    assert valid[("leads", "first_response_at")] == (3, 2)
    assert valid[("lifecycle", "health_score")] == (3, 1)
    assert valid[("subscriptions", "end_date")] == (2, 1)
    assert valid[("targets", "period_end")] == (2, 1)
