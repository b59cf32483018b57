"""The canonical tables as Polars frames, with the stage settings applied and filters pushed in."""
from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import duckdb
import polars as pl

from revops import store
from revops.errors import UserError
from revops.schema import TABLES, Settings, columns
from revops.stages import classify


@dataclass(frozen=True)
class Filters:
    """Sidebar filters; an empty tuple means no filter on that dimension."""

    segment: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    owner: tuple[str, ...] = ()
    source: tuple[str, ...] = ()

    def active(self) -> bool:
        """Whether any filter is set."""
        return any((self.segment, self.region, self.owner, self.source))


Source = pl.DataFrame | Callable[[], pl.DataFrame]
SNAPSHOTS = "snapshots"


class StaleData(UserError):
    """The file changed between reading two tables of one view."""


class TableReader:
    """Reads canonical tables of one DuckDB file at one data version, and answers small questions in SQL.

    Each read opens the file, checks in the same transaction that the data version is still the one
    the view started from (else StaleData: a view never mixes two uploads) and closes it again, so
    no idle reader keeps the file locked.
    """

    def __init__(self, db: str | Path, version: int, read_only: bool) -> None:
        self.db, self.version, self.read_only = Path(db), version, read_only

    @contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside one read transaction at this reader's data version (else StaleData)."""
        with store.connect(self.db, read_only=self.read_only) as con:
            # One read transaction: the version checked is the version read.
            con.execute("BEGIN TRANSACTION")
            try:
                rows = con.execute("SELECT value FROM _meta WHERE key = 'data_version'").fetchall()
                if (int(rows[0][0]) if rows else 0) != self.version:
                    raise StaleData("The data changed while this view was being read (a new upload or undo). "
                                    "Reload the page to see the new numbers.")
                yield con
            finally:
                con.execute("ROLLBACK")

    def query(self, sql: str) -> pl.DataFrame:
        """A query's rows as a frame, from the data version this reader was opened at."""
        with self._reading() as con:
            return con.sql(sql).pl()

    def table(self, name: str) -> pl.DataFrame:
        """A canonical table (or the opportunity snapshots), text columns Categorical (see compact)."""
        if name == SNAPSHOTS:
            return self._columns([f"SELECT {c} FROM _opportunity_snapshots" for c in SNAPSHOT_COLUMNS.split(", ")])
        return self._columns([store.select_sql(name, [c.name]) for c in columns(name)])

    def _columns(self, selects: list[str]) -> pl.DataFrame:
        """A table's columns, one query each, in one transaction (same version, same row order).

        A whole-table read hands Polars every column's Arrow buffers at once and frees the text ones
        among the numbers it keeps; a column at a time, text converted a batch at a time, leaves far
        less memory stranded (a million deals: about a third less resident memory, and faster).
        """
        with self._reading() as con:
            # DuckDB's scans keep insertion order (preserve_insertion_order), so every column is in table order.
            return pl.DataFrame([_read_column(con, sql) for sql in selects])

    def column_max(self, table: str, column: str) -> object:
        """max(column) of a canonical table, computed where the data lives."""
        return self.query(f'SELECT max("{column}") AS m FROM "{table}"')["m"][0]

    def column_values(self, table: str, column: str) -> list:
        """The distinct non-null values of a column, computed where the data lives."""
        return self.query(f'SELECT DISTINCT "{column}" AS v FROM "{table}" WHERE "{column}" IS NOT NULL')["v"].to_list()

    def null_masked(self, table: str, keep: set[str]) -> pl.DataFrame:
        """The table with every column outside `keep` read as its null mask (true, or null where empty)."""
        specs = {c.name: c for c in columns(table)}
        parts = []
        for name, spec in specs.items():
            if name in keep:
                parts.append(f'CAST("{name}" AS DOUBLE) AS "{name}"' if spec.kind == "money" else f'"{name}"')
            else:
                parts.append(f'CASE WHEN "{name}" IS NULL THEN NULL ELSE true END AS "{name}"')
        return self.query(f'SELECT {", ".join(parts)} FROM "{table}"')


SNAPSHOT_COLUMNS = ("snapshot_date, opportunity_id, stage, CAST(amount AS DOUBLE) AS amount, close_date, "
                    "is_closed, is_won, forecast_category, owner")
_BATCH_ROWS = 1_000_000


def compact(df: pl.DataFrame) -> pl.DataFrame:
    """Text columns other than ids as Categorical: 4 bytes a cell instead of Polars' 16-byte string view.

    Stages, owners, sources, features repeat on millions of rows; Polars keeps each distinct text once
    (its categories are global and compare as text: == "won", is_in([...]), sorting and joins between
    two such columns behave as on strings). Ids (*_id) stay strings: nearly every id is distinct, so
    categories would save little and cost a hash per row on every read, and ids are joined everywhere.
    """
    text = [c for c, t in df.schema.items() if t == pl.String and not c.endswith("_id")]
    return df.with_columns(pl.col(text).cast(pl.Categorical)) if text else df


def _read_column(con: duckdb.DuckDBPyConnection, sql: str) -> pl.Series:
    """One column of a query as one contiguous Series, text made compact a batch at a time (a small transient).

    One chunk, not DuckDB's many batches: every later filter, join and sort walks one buffer per column.
    """
    reader = con.sql(sql).to_arrow_reader(_BATCH_ROWS)
    parts = [compact(pl.from_arrow(batch)).to_series() for batch in reader]  # type: ignore[union-attr]
    if not parts:
        return compact(pl.from_arrow(reader.schema.empty_table())).to_series()  # type: ignore[union-attr]
    return pl.concat(parts, rechunk=True) if len(parts) > 1 else parts[0]


class Frames:
    """Every canonical table as a Polars frame; opportunities carry stage_name/state/funnel_step.

    A table may be given as a frame or as a function that makes it: it is then read (from the file)
    or derived (filtered, restricted to a day) the first time something asks for it, once, and kept.
    A view therefore costs only the tables it uses. Frames never change: derive() makes new ones.
    """

    def __init__(self, accounts: Source, leads: Source, opportunities: Source, stage_history: Source,
                 subscriptions: Source, lifecycle: Source, usage: Source, spend: Source, touches: Source,
                 targets: Source, settings: Settings | None = None, snapshots: Source | None = None, *,
                 reader: TableReader | None = None, parent: Frames | None = None) -> None:
        given = dict(accounts=accounts, leads=leads, opportunities=opportunities, stage_history=stage_history,
                     subscriptions=subscriptions, lifecycle=lifecycle, usage=usage, spend=spend, touches=touches,
                     targets=targets, snapshots=snapshots)
        self._sources: dict[str, Source | None] = given
        self._loaded: dict[str, pl.DataFrame | None] = {
            k: v for k, v in given.items() if v is None or isinstance(v, pl.DataFrame)}
        self._locks = {k: threading.Lock() for k in given}
        self._reader = reader
        self._parent = parent
        self._inherited: frozenset[str] = frozenset()
        self.settings = settings or Settings()

    def __setattr__(self, name: str, value: object) -> None:
        if name == "settings" and "settings" in self.__dict__:
            raise AttributeError("Frames never change: derive new ones")
        super().__setattr__(name, value)

    def _get(self, name: str) -> pl.DataFrame | None:
        if name in self._loaded:
            return self._loaded[name]
        with self._locks[name]:
            if name not in self._loaded:
                make = self._sources[name]
                self._loaded[name] = make() if callable(make) else make
            return self._loaded[name]

    @property
    def accounts(self) -> pl.DataFrame:
        """The accounts table."""
        return self._get("accounts")  # type: ignore[return-value]

    @property
    def leads(self) -> pl.DataFrame:
        """The leads table."""
        return self._get("leads")  # type: ignore[return-value]

    @property
    def opportunities(self) -> pl.DataFrame:
        """The opportunities table, stages classified."""
        return self._get("opportunities")  # type: ignore[return-value]

    @property
    def stage_history(self) -> pl.DataFrame:
        """The stage_history table."""
        return self._get("stage_history")  # type: ignore[return-value]

    @property
    def subscriptions(self) -> pl.DataFrame:
        """The subscriptions table."""
        return self._get("subscriptions")  # type: ignore[return-value]

    @property
    def lifecycle(self) -> pl.DataFrame:
        """The lifecycle table."""
        return self._get("lifecycle")  # type: ignore[return-value]

    @property
    def usage(self) -> pl.DataFrame:
        """The usage table."""
        return self._get("usage")  # type: ignore[return-value]

    @property
    def spend(self) -> pl.DataFrame:
        """The spend table."""
        return self._get("spend")  # type: ignore[return-value]

    @property
    def touches(self) -> pl.DataFrame:
        """The touches table."""
        return self._get("touches")  # type: ignore[return-value]

    @property
    def targets(self) -> pl.DataFrame:
        """The targets table."""
        return self._get("targets")  # type: ignore[return-value]

    @property
    def snapshots(self) -> pl.DataFrame | None:
        """The weekly opportunity snapshots, or None when there are none."""
        return self._get(SNAPSHOTS)

    def table(self, name: str) -> pl.DataFrame:
        """A table by its canonical name."""
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}")
        return self._get(name)  # type: ignore[return-value]

    def prefetch(self, names: list[str]) -> threading.Thread:
        """Start reading these tables in the background, in order, while the caller computes on others.

        DuckDB's scan and the Arrow hand-over run outside the interpreter lock, so on a second core the
        reads overlap the work on tables already read. Each table is still read once (see _get).
        """
        def read() -> None:
            for name in names:
                try:
                    self._get(name)
                except Exception:  # noqa: BLE001  (the foreground read raises it again, as a sentence)
                    return
        thread = threading.Thread(target=read, name="revops-prefetch", daemon=True)
        thread.start()
        return thread

    def derive(self, **changes: Source | None) -> Frames:
        """New frames with some tables replaced (frames, or functions making them on first use); the rest shared."""
        settings = changes.pop("settings", None)
        unknown = set(changes) - set(self._sources)
        if unknown:
            raise TypeError(f"unknown table {sorted(unknown)[0]!r}")
        tables: dict[str, Source | None] = {}
        for name in self._sources:
            if name in changes:
                tables[name] = changes[name]
            elif name in self._loaded:
                tables[name] = self._loaded[name]
            else:
                tables[name] = partial(self._get, name)
        out = Frames(**tables, settings=settings or self.settings, parent=self)  # type: ignore[arg-type]
        out._inherited = frozenset(n for n in self._sources if n not in changes)
        return out

    def _pushdown(self, name: str) -> TableReader | None:
        """The reader that can answer for a table not read yet (None: use the frame)."""
        if name in self._loaded:
            return None
        if self._reader is not None:
            return self._reader
        if self._parent is not None and name in self._inherited:
            return self._parent._pushdown(name)
        return None

    def column_max(self, table: str, column: str) -> object:
        """max(column) of a table; asked of the file when the table is not read yet."""
        reader = self._pushdown(table)
        if reader is not None:
            return reader.column_max(table, column)
        return self.table(table)[column].max()

    def height(self, table: str) -> int:
        """Number of rows of a table; asked of the file when the table is not read yet."""
        reader = self._pushdown(table)
        if reader is not None:
            return int(reader.query(f'SELECT count(*) AS n FROM "{table}"')["n"][0])
        return self.table(table).height

    def column_values(self, table: str, column: str) -> list:
        """The distinct non-null values of a column; asked of the file when the table is not read yet."""
        reader = self._pushdown(table)
        if reader is not None:
            return reader.column_values(table, column)
        return self.table(table)[column].drop_nulls().unique().to_list()

    def for_counting(self, table: str, keep: set[str]) -> pl.DataFrame:
        """The table for counting filled cells: columns outside `keep` may come as null masks (same nulls).

        A table not read yet is then read as masks, which moves a fraction of the bytes; the result is
        not kept, so counting does not hold a wide table in memory.
        """
        reader = self._pushdown(table)
        if reader is not None and table != "opportunities":
            return reader.null_masked(table, keep)
        return self.table(table)


def empty_frames(settings: Settings | None = None) -> Frames:
    """Frames with every table empty but typed, for tests and fresh files."""
    con = duckdb.connect()
    store.ensure_schema(con)
    return frames_from_tables({t: store.read_table(con, t) for t in TABLES}, settings or Settings())


def frames_from_tables(tables: dict[str, pl.DataFrame], settings: Settings | None = None,
                       snapshots: pl.DataFrame | None = None) -> Frames:
    """Frames from plain tables (missing tables empty, missing columns null), stages classified."""
    settings = settings or Settings()
    con = duckdb.connect()
    store.ensure_schema(con)
    out: dict[str, pl.DataFrame] = {}
    for name in TABLES:
        base = store.read_table(con, name)
        given = tables.get(name)
        if given is None:
            out[name] = base
            continue
        cols = [pl.col(c).cast(base.schema[c]) if c in given.columns else pl.lit(None, base.schema[c]).alias(c)
                for c in base.columns]
        extra = [c for c in given.columns if c not in base.columns]
        out[name] = given.select(cols + [pl.col(c) for c in extra])
    out = {name: compact(df) for name, df in out.items()}
    out["opportunities"] = classify(out["opportunities"], settings)
    return Frames(**out, settings=settings, snapshots=compact(snapshots) if snapshots is not None else None)


def load_frames(con: duckdb.DuckDBPyConnection) -> Frames:
    """Read every canonical table of the file (one read each) and classify the stages."""
    settings = store.get_settings(con)
    tables = {t: compact(store.read_table(con, t)) for t in TABLES}
    tables["opportunities"] = classify(tables["opportunities"], settings)
    snaps = compact(con.sql(f"SELECT {SNAPSHOT_COLUMNS} FROM _opportunity_snapshots").pl())
    return Frames(**tables, settings=settings, snapshots=snaps)


def open_frames(db: str | Path, *, read_only: bool = False) -> Frames:
    """The file's tables, each read on first use (see Frames), all from the data version current now."""
    with store.connect(db, read_only=read_only) as con:
        settings = store.get_settings(con)
        row = con.execute("SELECT value FROM _meta WHERE key = 'data_version'").fetchone()
    reader = TableReader(db, int(row[0]) if row else 0, read_only)
    sources: dict[str, Source] = {t: partial(reader.table, t) for t in TABLES}
    sources["opportunities"] = lambda: classify(reader.table("opportunities"), settings)
    return Frames(**sources, settings=settings, snapshots=partial(reader.table, SNAPSHOTS), reader=reader)


def _in(col: str, values: tuple[str, ...]) -> pl.Expr:
    return pl.col(col).is_in(list(values))


def _segment_mask(df: pl.DataFrame, accounts: pl.DataFrame, segments: tuple[str, ...]) -> pl.Series:
    """Rows whose segment (their own, else their account's) is one of `segments`.

    Most rows carry their own segment: the account is looked up only for the rows without one, not by
    a text-id lookup over every row (two million leads: 0.4 s -> a few ms).
    """
    own = df["segment"]
    mask = own.is_in(list(segments)).fill_null(False)
    missing = own.is_null()
    if missing.any():
        acc_seg = accounts.select("account_id", "segment").unique("account_id")
        at = missing.arg_true()
        looked_up = df["account_id"].gather(at).replace_strict(
            acc_seg["account_id"], acc_seg["segment"], default=None, return_dtype=pl.String)
        mask = mask.scatter(at, looked_up.is_in(list(segments)).fill_null(False))
    return mask


def _once(make: Callable[[], pl.DataFrame]) -> Callable[[], pl.DataFrame]:
    """make() computed on the first call only (thread-safe): a step several filtered tables share."""
    lock, box = threading.Lock(), []

    def get() -> pl.DataFrame:
        with lock:
            if not box:
                box.append(make())
            return box[0]
    return get


def apply_filters(frames: Frames, filters: Filters) -> Frames:
    """Restrict every table to the filtered segment/region/owner/source.

    Account-level tables (subscriptions, lifecycle, usage) follow their account's segment,
    region and owner; the source filter applies to leads, deals and touches only. Each table is
    filtered when a view first uses it, so a view pays only for the tables it reads.
    """
    if not filters.active():
        return frames
    account_filter = bool(filters.segment or filters.region or filters.owner)

    @_once
    def acc() -> pl.DataFrame:
        out = frames.accounts
        if filters.segment:
            out = out.filter(_in("segment", filters.segment))
        if filters.region:
            out = out.filter(_in("region", filters.region))
        if filters.owner:
            out = out.filter(_in("owner", filters.owner))
        return out

    def by_account(name: str) -> Callable[[], pl.DataFrame]:
        return lambda: frames.table(name).filter(pl.col("account_id").is_in(acc()["account_id"].implode()))

    def people(df: pl.DataFrame) -> pl.DataFrame:
        # Deals and leads carry their own segment/owner; region (and a missing segment) comes from the account.
        if filters.segment:
            df = df.filter(_segment_mask(df, frames.accounts, filters.segment))
        if filters.region:
            acc_region = frames.accounts.filter(_in("region", filters.region))["account_id"]
            df = df.filter(pl.col("account_id").is_in(acc_region.implode()))
        if filters.owner:
            df = df.filter(_in("owner", filters.owner))
        if filters.source:
            df = df.filter(_in("source", filters.source))
        return df

    opps = _once(lambda: people(frames.opportunities))

    def targets() -> pl.DataFrame:
        out = frames.targets
        if filters.segment:
            out = out.filter(_in("segment", filters.segment) | pl.col("segment").is_null())
        if filters.owner:
            out = out.filter(_in("owner", filters.owner) | pl.col("owner").is_null())
        # A target row for the filtered segment/owner beats the company-wide one.
        if filters.segment or filters.owner:
            specific = out.filter(pl.col("segment").is_not_null() | pl.col("owner").is_not_null())
            out = specific if specific.height else out
        return out

    def touches() -> pl.DataFrame:
        return frames.touches.filter(_in("channel", filters.source))

    def snapshots() -> pl.DataFrame | None:
        snaps = frames.snapshots
        return snaps.filter(pl.col("opportunity_id").is_in(opps()["opportunity_id"].implode())) \
            if snaps is not None else None

    changes: dict[str, Source | None] = {
        "leads": lambda: people(frames.leads),
        "opportunities": opps,
        "stage_history": lambda: frames.stage_history.filter(
            pl.col("opportunity_id").is_in(opps()["opportunity_id"].implode())),
        "snapshots": snapshots,  # type: ignore[dict-item]
    }
    # Tables no filter touches stay shared with the unfiltered frames (read once, for both).
    if account_filter:
        changes.update(accounts=acc, subscriptions=by_account("subscriptions"), lifecycle=by_account("lifecycle"),
                       usage=by_account("usage"))
    if filters.segment or filters.owner:
        changes["targets"] = targets
    if filters.source:
        changes["touches"] = touches
    return frames.derive(**changes)


def latest_event_date(frames: Frames) -> dt.date | None:
    """The latest creation, stage change, close of a closed deal, usage day or subscription start."""
    opps = frames.opportunities
    candidates = [
        frames.column_max("leads", "created_at"),
        opps["created_at"].max(),
        opps.filter(pl.col("state") != "open")["close_date"].max(),
        frames.column_max("stage_history", "changed_at"),
        frames.column_max("usage", "date"),
        frames.column_max("subscriptions", "start_date"),
    ]
    days = [c.date() if isinstance(c, dt.datetime) else c for c in candidates if c is not None]
    return max(days) if days else None  # type: ignore[type-var,return-value]


def default_as_of(frames: Frames, today: dt.date | None = None) -> dt.date:
    """Latest event date in the data, never later than today (today when there is no data)."""
    today = today or dt.date.today()
    latest = latest_event_date(frames)
    return min(latest, today) if latest else today


def distinct_values(frames: Frames) -> dict[str, list[str]]:
    """Choices for the sidebar filters."""
    def uniq(*where: tuple[str, str]) -> list[str]:
        vals: set[str] = set()
        for table, column in where:
            vals.update(v for v in frames.column_values(table, column) if v != "")
        return sorted(vals)
    return {
        "segment": uniq(("accounts", "segment"), ("opportunities", "segment"), ("leads", "segment")),
        "region": uniq(("accounts", "region")),
        "owner": uniq(("opportunities", "owner"), ("accounts", "owner"), ("leads", "owner")),
        "source": uniq(("opportunities", "source"), ("leads", "source")),
    }


def file_reader(frames: Frames, table: str) -> TableReader | None:
    """The reader that can answer in SQL for a table these frames have not read (None: use the frame).

    For a caller that needs a few rows of a big table once (a one-shot report): reading just those
    rows from the file costs a fraction of reading the table. Frames read from no file, tables read
    already and filtered tables answer None.
    """
    return frames._pushdown(table)


def read_rows(frames: Frames, table: str, where: str) -> pl.DataFrame | None:
    """The rows of a table these frames have not read that match an SQL condition, in table order, read as
    the whole table would be (None when file_reader has no reader: filter the frame instead)."""
    reader = file_reader(frames, table)
    return reader.query(f"{store.select_sql(table)} WHERE {where}") if reader is not None else None


__all__ = ["Filters", "Frames", "StaleData", "TableReader", "apply_filters", "compact", "default_as_of",
           "distinct_values", "empty_frames", "file_reader", "frames_from_tables", "latest_event_date", "load_frames",
           "open_frames", "read_rows"]

