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
