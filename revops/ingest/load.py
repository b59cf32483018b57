"""The public upload API: preview a file (mapping, parsed rows, rejects), load it, undo it."""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from revops import store, uploads
from revops.errors import UserError
from revops.export import to_csv_bytes
from revops.ingest.aliases import Match, guess_table, match_headers, targets
from revops.ingest.read import LINE, RawTable, file_sha256, read_raw
from revops.ingest.validate import REJECT_SCHEMA, check
from revops.schema import TABLES, Settings

Db = str | os.PathLike[str] | duckdb.DuckDBPyConnection | None


@dataclass
class Preview:
    """What loading a file would do: the mapping used, rows to load, rows rejected and why, notices."""

    file_name: str
    sha256: str
    table: str
    guessed: bool
    headers: list[str]
    mapping: dict[str, str]
    unmatched: list[str]
    ambiguous: dict[str, str]
    missing_required: list[str]
    rows_read: int
    frame: pl.DataFrame
    rejects: pl.DataFrame
    extras: pl.DataFrame
    raw: RawTable
    notices: list[str] = field(default_factory=list)
    saved_mapping_used: bool = False

    @property
    def rows_ok(self) -> int:
        """Rows that would load."""
        return self.frame.height

    @property
    def rows_rejected(self) -> int:
        """Rows that would not load (each counted once however many problems it has)."""
        return self.rejects["line"].n_unique() if self.rejects.height else 0

    @property
    def problem(self) -> str | None:
        """Why nothing at all can be loaded, in one sentence; None when some rows can."""
        if self.missing_required:
            cols = ", ".join(self.missing_required)
            have = ", ".join(self.headers[:12]) + ("…" if len(self.headers) > 12 else "")
            hint = guess_table(self.headers)
            also = f" It looks like a {hint} file." if hint != self.table else ""
            return (f"The file has no column for {cols} (required in {self.table}); its columns are: {have}."
                    f"{also} Map a column to {self.missing_required[0]} to load it.")
        if self.rows_read == 0:
            return f"{self.file_name} has a header row but no data rows."
        if self.rows_ok == 0:
            return f"None of the {self.rows_read} rows can be loaded: {self.reason_summary(3)}."
        return None

    def reason_summary(self, limit: int = 5) -> str:
        """The most common reasons for rejecting rows, with counts and first lines."""
        return "; ".join(f"{r['column'] + ': ' if r['column'] else ''}{r['problem']} ({r['rows']} row"
                         f"{'s' if r['rows'] != 1 else ''}, line{'s' if r['rows'] != 1 else ''} {r['lines']})"
                         for r in self.reasons().head(limit).iter_rows(named=True))

    def reasons(self) -> pl.DataFrame:
        """Reject reasons grouped: column, problem, rows, first lines."""
        if self.rejects.height == 0:
            return pl.DataFrame(schema={"column": pl.String, "problem": pl.String, "rows": pl.UInt32,
                                        "lines": pl.String})
        return (self.rejects.group_by("column", "problem", maintain_order=True)
                .agg(pl.col("line").n_unique().alias("rows"),
                     pl.col("line").unique(maintain_order=True).head(5).cast(pl.String).str.join(", ").alias("lines"))
                .sort("rows", descending=True, maintain_order=True))

    def rejected_rows(self) -> pl.DataFrame:
        """The rejected rows in the file's own layout, with an `error` column saying why."""
        errors = (self.rejects.with_columns(
            pl.when(pl.col("column") != "").then(pl.col("column") + ": " + pl.col("reason"))
            .otherwise(pl.col("reason")).alias("msg"))
            .group_by("line", maintain_order=True).agg(pl.col("msg").str.join("; ").alias("error")))
        rows = self.raw.frame.join(errors, left_on=LINE, right_on="line", how="inner").sort(LINE)
        return rows.select(self.raw.headers + ["error"])

    def samples(self) -> dict[str, str | None]:
        """The first filled value of each column in the file, to help map it."""
        return self.raw.samples if self.raw.samples is not None else _first_values(self.raw)

    def rejects_csv(self) -> bytes:
        """Rejected rows as a CSV to fix and re-upload (formula-looking text escaped)."""
        return to_csv_bytes(self.rejected_rows())


@dataclass(frozen=True)
class UploadResult:
    """What a load did."""

    upload_id: int | None
    table: str
    file_name: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_inserted: int
    rows_replaced: int
    rows_unchanged: int
    unchanged: bool
    duplicate_of: int | None
    as_of: dt.date
    removed_demo: bool = False

    def summary(self) -> str:
        """One line for people."""
        if self.unchanged:
            where = f" (it was already loaded as upload {self.duplicate_of})" if self.duplicate_of else ""
            return (f"Nothing changed: all {self.rows_loaded} rows of {self.file_name} are already loaded as they "
                    f"are{where}.")
        demo = " The demo company was removed: the workspace now holds your data only." if self.removed_demo else ""
        return (f"Upload {self.upload_id}: loaded {self.rows_loaded} rows into {self.table} "
                f"({self.rows_inserted} new, {self.rows_replaced} updated, {self.rows_unchanged} unchanged); "
                f"{self.rows_rejected} rejected.{demo}")


def describe_size(n_bytes: int) -> str:
    """A file size for people: 850 KB, 12.3 MB."""
    return f"{n_bytes / 1e6:,.1f} MB" if n_bytes >= 1e6 else f"{max(n_bytes / 1e3, 0.1):,.1f} KB"


def _first_values(raw: RawTable) -> dict[str, str | None]:
    # A sample for the mapping's help text: the first filled value among the first rows is enough.
    firsts = raw.frame.head(1000).select(pl.col(h).drop_nulls().first() for h in raw.headers)
    return dict(zip(raw.headers, firsts.row(0))) if firsts.height else dict.fromkeys(raw.headers)


@contextmanager
def _connection(db: Db) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(db, duckdb.DuckDBPyConnection):
        yield db
    else:
        with store.connect(db) as con:
            yield con


def _validate_manual(mapping: dict[str, str], headers: list[str], table: str) -> None:
    allowed = targets(table)
    for src, dst in mapping.items():
        if src not in headers:
            raise UserError(f"The file has no column “{src}” to map (its columns are: {', '.join(headers[:12])}).")
        if dst and dst not in allowed:
            raise UserError(f"{table} has no column “{dst}”; use one of: {', '.join(allowed)}.")
    used = [d for d in mapping.values() if d]
    twice = sorted({d for d in used if used.count(d) > 1})
    if twice:
        raise UserError(f"More than one column is mapped to {', '.join(twice)}; map each canonical column once.")


def preview(data: bytes | Path | str, file_name: str | None = None, table: str | None = None,
            mapping: dict[str, str] | None = None, settings: Settings | None = None, *,
            db: Db = None, raw: RawTable | None = None) -> Preview:
    """Read, map and check a file without writing anything.

    `mapping` holds manual choices (source header -> canonical column, "" to keep a column
    aside); the rest is matched by alias. With `db`, the workspace settings and a mapping saved
    for the same headers are used. `raw` is the file already read by read_raw (the CLI reads it
    while it opens the database).
    """
    source: bytes | Path = Path(data) if isinstance(data, str) else data
    name = file_name or (source.name if isinstance(source, Path) else "upload.csv")
    if table is not None and table not in TABLES:
        raise UserError(f"Unknown table “{table}”; use one of: {', '.join(TABLES)}.")
    raw = raw if raw is not None else read_raw(source, name)  # hashes the file on its way through
    sha = raw.sha256 or file_sha256(source)
    saved: tuple[str, dict[str, str]] | None = None
    if db is not None and (settings is None or not mapping):
        with _connection(db) as con:
            settings = settings or store.get_settings(con)
            saved = uploads.saved_mapping(con, raw.headers)
    settings = settings or Settings()
    used_saved = False
    manual = dict(mapping or {})
    if not manual and saved is not None and (table is None or table == saved[0]):
        table, manual, used_saved = saved[0], dict(saved[1]), True
        manual.update({h: "" for h in raw.headers if h not in manual})
    guessed = table is None
    table = table or guess_table(raw.headers)
    _validate_manual(manual, raw.headers, table)
    match: Match = match_headers(raw.headers, table, manual)
    notices = list(raw.notices)
    if used_saved:
        notices.insert(0, "Used the mapping saved for files with these columns.")
    if guessed:
        notices.insert(0, f"Loading as {table} (guessed from the column names).")
    empty = pl.DataFrame(schema=REJECT_SCHEMA)
    if match.missing_required or raw.rows == 0:
        return Preview(name, sha, table, guessed, raw.headers, match.mapping, match.unmatched,
                       match.ambiguous, match.missing_required, raw.rows, raw.frame.clear(), empty,
                       pl.DataFrame(), raw, notices, used_saved)
    raw.samples = _first_values(raw)
    rows_read = raw.rows
    checked = check(raw, table, match.mapping, settings)
    notices += checked.notices
    # Only the rejected rows' original text is needed from here on (for the rejects file).
    raw.keep_rows(checked.rejects["line"].unique())
    return Preview(name, sha, table, guessed, raw.headers, match.mapping, match.unmatched,
                   match.ambiguous, [], rows_read, checked.frame, checked.rejects, checked.extras, raw, notices,
                   used_saved)


def load(db: Db, pv: Preview, *, as_of: dt.date | None = None, user: str | None = None, strict: bool = False,
         save_mapping: bool = False) -> UploadResult:
    """Write the previewed rows in one transaction (upsert by key); nothing is written on any failure."""
    if pv.problem:
        raise UserError(pv.problem)
    if strict and pv.rows_rejected:
        raise UserError(f"Strict mode: {pv.rows_rejected} of {pv.rows_read} rows were rejected, so nothing was "
                        f"loaded ({pv.reason_summary(3)}).")
    day = as_of or dt.date.today()
    with _connection(db) as con:
        written = uploads.write_upload(
            con, pv.table, pv.frame, pv.extras, file_name=pv.file_name, sha256=pv.sha256,
            rows_read=pv.rows_read, rows_rejected=pv.rows_rejected, as_of=day,
            user=user or "unknown", mapping=pv.mapping, remember=pv.headers if save_mapping else None)
    return UploadResult(written.upload_id, pv.table, pv.file_name, pv.rows_read, pv.rows_ok, pv.rows_rejected,
                        written.rows_inserted, written.rows_replaced, written.rows_unchanged, written.unchanged,
                        written.duplicate_of, day, written.removed_demo)


def undo(db: Db, upload_id: int) -> uploads.Undone:
    """Undo one upload, restoring exactly the rows it replaced."""
    with _connection(db) as con:
        return uploads.undo_upload(con, upload_id)


def upload_log(db: Db = None) -> pl.DataFrame:
    """The upload log, newest first."""
    with _connection(db) as con:
        return uploads.list_uploads(con)


def ingest_file(db: Db, path: str | Path, table: str | None = None, *, mapping: dict[str, str] | None = None,
                as_of: dt.date | None = None, user: str | None = None, strict: bool = False) -> UploadResult:
    """Preview and load a file in one call (scripts and tests)."""
    with _connection(db) as con:
        pv = preview(Path(path), None, table, mapping, db=con)
        return load(con, pv, as_of=as_of, user=user, strict=strict)
