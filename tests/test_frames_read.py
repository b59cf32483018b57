"""Reading the file's tables into frames: a column at a time, text other than ids compact (Categorical)."""
from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from revops import frames as frames_mod
from revops import store
from revops.frames import SNAPSHOT_COLUMNS, compact, empty_frames, frames_from_tables, open_frames
from revops.schema import TABLES


def _as_text(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items() if t == pl.Categorical)


def test_tables_read_in_small_batches_equal_a_plain_read(demo_file, monkeypatch):
    """Every table and the snapshots, read a column and 97 rows at a time, equal SELECT * of them, row for row."""
    monkeypatch.setattr(frames_mod, "_BATCH_ROWS", 97)  # many batches per column: their order must hold
    frames = open_frames(demo_file, read_only=True)
    with store.connect(demo_file, read_only=True) as con:
        for name in TABLES:
            plain = store.read_table(con, name)
            assert plain.height > 97 or name in ("spend", "targets", "lifecycle", "accounts", "subscriptions")
            assert_frame_equal(_as_text(frames.table(name).select(plain.columns)), plain)
        snaps = con.sql(f"SELECT {SNAPSHOT_COLUMNS} FROM _opportunity_snapshots").pl()
    assert snaps.height > 97
    assert_frame_equal(_as_text(frames.snapshots), snaps)


def test_text_is_categorical_and_ids_stay_strings(demo_file):
    """Stages, owners, features are Categorical; columns named *_id stay String; numbers and dates untouched."""
    frames = open_frames(demo_file, read_only=True)
    assert frames.stage_history.schema["stage"] == pl.Categorical
    assert frames.stage_history.schema["opportunity_id"] == pl.String
    assert frames.usage.schema["feature"] == pl.Categorical
    assert frames.usage.schema["account_id"] == pl.String
    assert frames.leads.schema["owner"] == pl.Categorical
    assert frames.opportunities.schema["amount"] == pl.Float64
    assert frames.snapshots.schema["stage"] == pl.Categorical


def test_hand_made_frames_get_the_file_schema(demo_file):
    """frames_from_tables and empty_frames give each table the schema open_frames reads from a file."""
    from_file = open_frames(demo_file, read_only=True)
    hand_made = frames_from_tables({"usage": pl.DataFrame({"account_id": ["a"], "feature": ["x"]})})
    empty = empty_frames()
    for name in TABLES:
        assert hand_made.table(name).schema == from_file.table(name).schema, name
        assert empty.table(name).schema == from_file.table(name).schema, name


def test_empty_file_reads_typed_empty_tables(tmp_path):
    """A fresh file's tables read as empty frames with the same columns and types as empty_frames."""
    path = tmp_path / "empty.duckdb"
    with store.connect(path):
        pass
    frames = open_frames(path)
    for name in TABLES:
        assert frames.table(name).height == 0
        assert frames.table(name).schema == empty_frames().table(name).schema, name
    assert frames.snapshots.height == 0


def test_compact_keeps_values_and_text_order():
    """compact changes types only: values and nulls stay, and sorting still goes by the text."""
    df = pl.DataFrame({"stage": ["Won", None, "Discovery", "Won"], "deal_id": ["d2", "d1", "d3", "d4"],
                       "n": [1, 2, 3, 4]})
    out = compact(df)
    assert dict(out.schema) == {"stage": pl.Categorical, "deal_id": pl.String, "n": pl.Int64}
    assert out["stage"].to_list() == ["Won", None, "Discovery", "Won"]
    # Text order, not order of first appearance: Discovery < Won.
    assert out.sort("stage", nulls_last=True)["n"].to_list() == [3, 1, 4, 2]
