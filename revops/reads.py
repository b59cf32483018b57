"""Reads of the big tables narrowed to what a one-shot report needs: windows and the rows of a set of keys.

A page reads a whole table once and slices it, as it asks one table for many windows (trend points)
and each slice is cheap. A one-shot report (the metrics command) asks each table for a few windows
once: inside rows_from_file, a table not read yet stays unread and only the rows asked for come from
the file, the same rows in the same (table) order as the whole table would give them.
"""
from __future__ import annotations

import datetime as dt
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import polars as pl

from revops import store
from revops.frames import Frames, TableReader, file_reader, read_rows
from revops.memo import derived
from revops.rows import rows_between
from revops.schema import TABLES, columns

_FROM_FILE: ContextVar[bool] = ContextVar("revops_rows_from_file", default=False)
_WINDOWS_LOCK = threading.Lock()
# A window read from the file reaches back at least this many days from its end, so that the other
# windows of the same as-of (the 28 days to it and the 28 before) are slices of the same read.
READ_BACK_DAYS = 56


@contextmanager
def rows_from_file() -> Iterator[None]:
    """Inside this block, windows and key lookups of tables not read yet are read from the file alone."""
    token = _FROM_FILE.set(True)
    try:
        yield
    finally:
        _FROM_FILE.reset(token)


def reads_from_file(frames: Frames, table: str) -> bool:
    """Whether this table's rows should come from the file (inside rows_from_file, table not read yet)."""
    return _FROM_FILE.get() and file_reader(frames, table) is not None


def _ident(table: str | None, name: str) -> str:
    """A column of a canonical table (table None: a plain name of letters, digits and _) as a quoted SQL
    identifier; any other name is refused, so SQL text is built from the schema and our own names only."""
    known = {c.name for c in columns(table)} if table is not None else set()
    if name not in known and not (table is None and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)):
        raise ValueError(f"{name!r} is not a column of {table or 'a key frame'!r}")
    return f'"{name}"'


def _day(day: dt.date) -> str:
    """A date as an SQL date literal (a date object only, never text)."""
    if not isinstance(day, dt.date):
        raise TypeError(f"expected a date, got {type(day).__name__}")
    return f"DATE '{day.isoformat()}'"


def table_between(frames: Frames, table: str, col: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    """The rows of a table whose `col` day lies in [start, end], in table order (rows_between of the table).

    Inside rows_from_file, a table not read yet stays unread: the rows come from the file, and one read
    serves every later window inside it.
    """
    if not reads_from_file(frames, table):
        return rows_between(frames.table(table), col, start, end)
    # One thread reads while another asking for the same rows waits for them (a report computes its
    # tables on a second thread), rather than both reading.
    with _WINDOWS_LOCK:
        reads: list[tuple[dt.date, dt.date, pl.DataFrame]] = derived(frames, "file_windows", list, key=(table, col))
        for low, high, rows in reads:
            if low <= start and end <= high:
                return rows_between(rows, col, start, end)
        low = min(start, end - dt.timedelta(days=READ_BACK_DAYS - 1))
        rows = read_rows(frames, table, f"CAST({_ident(table, col)} AS DATE) BETWEEN {_day(low)} AND {_day(end)}")
        if rows is None:  # read whole meanwhile (another thread): slice the frame
            return rows_between(frames.table(table), col, start, end)
        reads.append((low, end, rows))
    return rows_between(rows, col, start, end)


def rows_with_keys(frames: Frames, table: str, keys: pl.DataFrame, on: str, cols: list[str],
                   window: tuple[str, dt.date, dt.date] | None = None) -> pl.DataFrame:
    """The columns `cols` of the table's rows whose `on` is in `keys`, with the other columns of `keys` appended, in
    table order: table.join(keys, on=on, how="inner", maintain_order="left"). `keys` must be distinct on `on`.
    With a window (column, start, end), of the rows of table_between only.

    Inside rows_from_file, a table not read yet is joined in the file: the keys go there as a Parquet file.
    """
    extra = [c for c in keys.columns if c != on]
    reader = file_reader(frames, table) if _FROM_FILE.get() else None
    if reader is None:
        rows = frames.table(table) if window is None else table_between(frames, table, *window)
        return rows.select(on, *cols).join(keys, on=on, how="inner", maintain_order="left").select(*cols, *extra)
    picked = ", ".join([*(f"t.{_ident(table, c)}" for c in cols), *(f"k.{_ident(None, c)}" for c in extra)])
    scan = store.select_sql(table, [on, *cols]).replace("SELECT ", "SELECT rowid AS __row, ", 1)
    if window is not None:
        col, start, end = window
        scan += f" WHERE CAST({_ident(table, col)} AS DATE) BETWEEN {_day(start)} AND {_day(end)}"
    with tempfile.TemporaryDirectory(prefix="revops-keys-") as tmp:
        path = Path(tmp) / "keys.parquet"
        keys.write_parquet(path)
        # rowid is the table's own order (what a plain SELECT returns), restored after the join.
        keys_file = path.as_posix()  # a file of our own temporary folder
        return reader.query(f"SELECT {picked} FROM ({scan}) t JOIN read_parquet('{keys_file}') k "
                            f"ON t.{_ident(table, on)} = k.{_ident(table, on)} ORDER BY t.__row")


def window_total(frames: Frames, table: str, col: str, day_col: str, start: dt.date, end: dt.date) -> float:
    """Σ of an integer column over the rows whose `day_col` day lies in [start, end] (nulls left out; 0.0 for none).

    Inside rows_from_file, a table not read yet sums in the file: integers sum exactly either way.
    """
    reader = file_reader(frames, table) if _FROM_FILE.get() else None
    if reader is None or next(c for c in columns(table) if c.name == col).kind != "int":
        rows = table_between(frames, table, day_col, start, end)
        return float(rows[col].cast(pl.Float64).sum()) if rows.height else 0.0
    total = reader.query(f'SELECT sum({_ident(table, col)}) AS s FROM "{table}" WHERE '
                         f"CAST({_ident(table, day_col)} AS DATE) BETWEEN {_day(start)} AND {_day(end)}")["s"][0]
    return float(total) if total is not None else 0.0


def _distinct(frames: Frames, table: str, col: str) -> list[object] | None:
    """The distinct values of a column (a missing value among them), asked of the file inside rows_from_file
    when the table is not read yet; once per frames. None: use the frame."""
    reader = file_reader(frames, table) if _FROM_FILE.get() else None
    if reader is None:
        return None
    return derived(frames, "file_distinct", lambda: reader.query(f'SELECT DISTINCT {_ident(table, col)} AS v FROM "{table}"')[
        "v"].to_list(), key=(table, col))


def column_n_unique(frames: Frames, table: str, col: str) -> int:
    """Distinct values of a column, a missing value counting as one (Series.n_unique); once per table."""
    values = _distinct(frames, table, col)
    if values is not None:
        return len(values)
    df = frames.table(table)
    return derived(df, f"{col}_n_unique", lambda: df[col].n_unique())


def column_distinct(frames: Frames, table: str, col: str) -> pl.DataFrame:
    """The distinct non-null values of a column, sorted (one column named `col`); once per table."""
    values = _distinct(frames, table, col)
    if values is not None:
        return pl.DataFrame({col: [v for v in values if v is not None]}, schema={col: pl.String}).sort(col)
    df = frames.table(table)
    return derived(df, f"{col}_distinct", lambda: df.select(pl.col(col).drop_nulls().unique().sort()))


def table_height(frames: Frames, table: str) -> int:
    """Rows of a table: its frame's height once read, else counted in the file (see _file_heights)."""
    counted = _file_heights(frames).get(table)
    return counted if counted is not None else frames.table(table).height


def _file_heights(frames: Frames) -> dict[str, int]:
    """Rows of every table not read yet, counted in one query (each query opens the file); once per frames."""
    return derived(frames, "file_heights", lambda: _count_rows(frames))


def _count_rows(frames: Frames) -> dict[str, int]:
    groups: dict[int, tuple[TableReader, list[str]]] = {}
    for table in TABLES:
        reader = file_reader(frames, table)
        if reader is not None:
            groups.setdefault(id(reader), (reader, []))[1].append(table)
    out: dict[str, int] = {}
    for reader, tables in groups.values():
        counts = ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in tables)
        out.update({t: int(n) for t, n in reader.query(f"SELECT {counts}").row(0, named=True).items()})
    return out


__all__ = ["READ_BACK_DAYS", "column_distinct", "column_n_unique", "rows_from_file", "rows_with_keys",
           "table_between", "table_height", "window_total"]
