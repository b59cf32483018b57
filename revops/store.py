"""The DuckDB file: DDL, connections, transactions, data version, settings, table reads."""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from revops.schema import MODELS, TABLES, Settings, columns

DEFAULT_DB = Path("data") / "revops.duckdb"
META_TABLES: dict[str, str] = {
    "_meta": "key VARCHAR PRIMARY KEY, value VARCHAR",
    "_uploads": (
        "upload_id BIGINT PRIMARY KEY, table_name VARCHAR, file_name VARCHAR, sha256 VARCHAR, "
        "rows_read BIGINT, rows_loaded BIGINT, rows_rejected BIGINT, rows_inserted BIGINT, "
        "rows_replaced BIGINT, user_name VARCHAR, uploaded_at TIMESTAMP, as_of DATE, mapping VARCHAR, "
        "undone_at TIMESTAMP"
    ),
    # Columns of an upload that matched no canonical column, kept aside rather than lost.
    "_extras": "upload_id BIGINT, row_number BIGINT, row_key VARCHAR, data VARCHAR",
    "_mappings": "header_signature VARCHAR PRIMARY KEY, table_name VARCHAR, mapping VARCHAR, saved_at TIMESTAMP",
    "_scenarios": "name VARCHAR PRIMARY KEY, levers VARCHAR, saved_at TIMESTAMP",
    "_assessments": "assessment_id BIGINT, taken_at TIMESTAMP, answers VARCHAR, result VARCHAR",
}


class StoreBusy(RuntimeError):
    """Another process holds the database's write lock for longer than we wait."""


# DuckDB lets threads of one process write at once and fails the later commit on a conflict (the data
# version row, the uploads log); writers of this process take turns instead.
_WRITE_LOCK = threading.RLock()
WAIT_ENV = "REVOPS_LOCK_WAIT_SECONDS"


def lock_wait_seconds(default: float = 15.0) -> float:
    """How long to wait for the database lock: $REVOPS_LOCK_WAIT_SECONDS, else the default."""
    try:
        return float(os.environ.get(WAIT_ENV, default))
    except ValueError:
        return default


def resolve_db(db: str | os.PathLike[str] | None = None) -> Path:
    """The DuckDB file to use: the argument, else $REVOPS_DB, else data/revops.duckdb."""
    if db:
        return Path(db)
    env = os.environ.get("REVOPS_DB")
    return Path(env) if env else DEFAULT_DB


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text or "being used by another process" in text


class _Shared:
    """This process's one DuckDB instance of a file, and how many connections of it are open."""

    def __init__(self, base: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        self.base, self.read_only, self.users = base, read_only, 0


# DuckDB must see a file through one instance per process: two threads racing to open and close it can
# otherwise attach it twice ("Unique file handle conflict") and read past each other's transactions.
# Connections are cursors of one shared instance, closed with the last user so that no idle process
# keeps the file locked between page runs.
_OPEN_LOCK = threading.Lock()
_SHARED: dict[str, _Shared] = {}


# DuckDB 2.0 can show a statement that scans a table while a large append commits some of the new rows
# and not the rest (seen about once in 10,000 reads, tests/test_concurrency.py); across processes the file
# lock already keeps readers out, so only the threads of this process need a gate.
class _CommitGate:
    """Statements of this process stay out of the file while one of its writers commits."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open: dict[int, int] = {}  # thread -> connections it has open
        self._committer: int | None = None

    def enter(self) -> None:
        """A connection opens: wait while another thread commits."""
        me = threading.get_ident()
        with self._cond:
            self._cond.wait_for(lambda: self._committer in (None, me))
            self._open[me] = self._open.get(me, 0) + 1

    def leave(self) -> None:
        """A connection closes."""
        me = threading.get_ident()
        with self._cond:
            left = self._open.get(me, 1) - 1
            if left:
                self._open[me] = left
            else:
                self._open.pop(me, None)
            self._cond.notify_all()

    @contextmanager
    def parked(self) -> Iterator[None]:
        """Step aside while waiting for the write lock: the writer ahead must not wait for a waiting thread."""
        me = threading.get_ident()
        with self._cond:
            held = self._open.pop(me, 0)
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._cond.wait_for(lambda: self._committer in (None, me))
                if held:
                    self._open[me] = held

    @contextmanager
    def exclusive(self, timeout: float) -> Iterator[None]:
        """Hold every other thread's statements off (new ones wait, running ones finish) for a commit."""
        me = threading.get_ident()
        with self._cond:
            self._committer = me
            if not self._cond.wait_for(lambda: all(t == me for t in self._open), timeout):
                self._committer = None
                self._cond.notify_all()
                raise StoreBusy("The database is busy: other pages are still reading it. Try again in a moment.")
        try:
            yield
        finally:
            with self._cond:
                self._committer = None
                self._cond.notify_all()


_GATE = _CommitGate()


class _WritersWait(duckdb.IOException):
    """This process has the file open read-only; a writer waits for those readers like for a lock."""


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    key = str(path.resolve())
    with _OPEN_LOCK:
        shared = _SHARED.get(key)
        if shared is None:
            shared = _SHARED[key] = _Shared(duckdb.connect(str(path), read_only=read_only), read_only)
        elif shared.read_only and not read_only:
            raise _WritersWait("lock: the file is open read-only in this process")
        shared.users += 1
        return shared.base.cursor()


def _close(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    key = str(path.resolve())
    with _OPEN_LOCK:
        con.close()
        shared = _SHARED[key]
        shared.users -= 1
        if shared.users == 0:
            shared.base.close()
            del _SHARED[key]


def file_stamp(path: Path) -> tuple:
    """Modification time and size of the file and of its write-ahead log: every commit changes one of them."""
    stamp = []
    for part in (path, path.with_name(path.name + ".wal")):
        try:
            info = part.stat()
            stamp.append((info.st_mtime_ns, info.st_size))
        except FileNotFoundError:
            stamp.append(None)
    return tuple(stamp)


@contextmanager
def connect(db: str | os.PathLike[str] | None = None, *, read_only: bool = False,
            wait_seconds: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the file (creating its tables), retrying while another process holds its lock."""
    path = resolve_db(db)
    wait_seconds = lock_wait_seconds() if wait_seconds is None else wait_seconds
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            con = _open(path, read_only)
            break
        except duckdb.Error as exc:  # DuckDB raises IOException for a lock held by another process
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                if _is_lock_error(exc):
                    raise StoreBusy(
                        f"The database {path} is busy: another upload is still running. Try again in a moment."
                    ) from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    _GATE.enter()
    try:
        if not read_only:
            ensure_schema(con)
        yield con
    finally:
        _close(path, con)
        _GATE.leave()


@contextmanager
def write_lock() -> Iterator[None]:
    """This process's write turn for a read-then-write sequence (re-entrant; transaction() takes it too)."""
    # An upload compares its rows with the table before its transaction; holding the turn from the comparison
    # on keeps another session's upload of the same keys from slipping in between (duplicate keys otherwise).
    with _GATE.parked():
        locked = _WRITE_LOCK.acquire(timeout=lock_wait_seconds())
    if not locked:
        raise StoreBusy("The database is busy: another upload is still running. Try again in a moment.")
    try:
        yield
    finally:
        _WRITE_LOCK.release()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All of the block or none of it; bumps the data version when it commits."""
    with write_lock():
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
            bump_version(con)
            with _GATE.exclusive(lock_wait_seconds()):
                con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def table_ddl(table: str) -> str:
    """CREATE TABLE statement of a canonical table."""
    cols = ", ".join(f'"{c.name}" {c.duckdb_type}' for c in columns(table))
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({cols})'


def snapshot_ddl() -> str:
    """The opportunity snapshots: each upload's opportunities kept under their as-of date."""
    cols = ", ".join(f'"{c.name}" {c.duckdb_type}' for c in columns("opportunities"))
    return f"CREATE TABLE IF NOT EXISTS _opportunity_snapshots (snapshot_date DATE, upload_id BIGINT, {cols})"


def undo_ddl(table: str) -> str:
    """Rows an upload replaced or inserted, so that undo restores exactly what was there."""
    cols = ", ".join(f'"{c.name}" {c.duckdb_type}' for c in columns(table))
    return f'CREATE TABLE IF NOT EXISTS "_undo_{table}" (upload_id BIGINT, action VARCHAR, {cols})'


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every canonical and bookkeeping table that is missing."""
    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    wanted = set(TABLES) | set(META_TABLES) | {"_opportunity_snapshots"} | {f"_undo_{t}" for t in TABLES}
    if wanted <= existing:
        return
    # Two sessions opening a new file at once would both create the tables: a catalog conflict in DuckDB.
    # One transaction: one commit to the file instead of one per table (a new file opens ~0.1 s sooner).
    with write_lock():
        con.execute("BEGIN TRANSACTION")
        try:
            for table in TABLES:
                con.execute(table_ddl(table))
                con.execute(undo_ddl(table))
            for name, cols in META_TABLES.items():
                con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")
            con.execute(snapshot_ddl())
            con.execute("INSERT INTO _meta VALUES ('data_version', '0') ON CONFLICT DO NOTHING")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def bump_version(con: duckdb.DuckDBPyConnection) -> int:
    """Advance the data version; every cached result keyed on the old one becomes stale."""
    row = con.execute(
        "UPDATE _meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) "
        "WHERE key = 'data_version' RETURNING value").fetchone()
    return int(row[0]) if row else 0


def data_version(db: str | os.PathLike[str] | None = None) -> int:
    """The data version of the file, or -1 when the file does not exist yet."""
    path = resolve_db(db)
    if not path.exists():
        return -1
    with connect(path) as con:
        row = con.execute("SELECT value FROM _meta WHERE key = 'data_version'").fetchone()
    return int(row[0]) if row else 0


def get_meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """A value of the _meta table."""
    # fetchall, not fetchone: DuckDB 2 refuses the next relation (con.sql) while a result is unfinished.
    rows = con.execute("SELECT value FROM _meta WHERE key = ?", [key]).fetchall()
    return rows[0][0] if rows else None


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Set a value of the _meta table."""
    con.execute("INSERT OR REPLACE INTO _meta VALUES (?, ?)", [key, value])


def get_settings(con: duckdb.DuckDBPyConnection) -> Settings:
    """The workspace settings (defaults when none were saved)."""
    raw = get_meta(con, "settings")
    return Settings.model_validate_json(raw) if raw else Settings()


def save_settings(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Save the workspace settings in one transaction (a new data version)."""
    with transaction(con):
        set_meta(con, "settings", settings.model_dump_json())


def is_demo(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the file holds the built-in demo company."""
    return get_meta(con, "demo") == "1"


def select_sql(table: str, cols: list[str] | None = None) -> str:
    """SELECT of a canonical table with money read as DOUBLE, so Polars sees plain floats."""
    specs = {c.name: c for c in columns(table)}
    names = cols or list(specs)
    parts = []
    for name in names:
        if specs[name].kind == "money":
            parts.append(f'CAST("{name}" AS DOUBLE) AS "{name}"')
        else:
            parts.append(f'"{name}"')
    return f'SELECT {", ".join(parts)} FROM "{table}"'


def read_table(con: duckdb.DuckDBPyConnection, table: str, cols: list[str] | None = None) -> pl.DataFrame:
    """A canonical table as a Polars frame (through Arrow)."""
    if table not in MODELS:
        raise KeyError(f"unknown table {table!r}")
    return con.sql(select_sql(table, cols)).pl()


def row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Number of rows in each canonical table."""
    return {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in TABLES}


def _replace_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, names: list[str]) -> None:
    """Swap a table's rows for a frame's (through Arrow), inside the caller's transaction."""
    missing = [n for n in names if n not in frame.columns]
    frame = frame.with_columns([pl.lit(None).alias(n) for n in missing]).select(names)
    con.execute(f'DELETE FROM "{table}"')
    con.register("_incoming", frame.to_arrow())
    try:
        con.execute(f'INSERT INTO "{table}" SELECT * FROM _incoming')
    finally:
        con.unregister("_incoming")


def replace_tables(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame], *,
                   snapshots: pl.DataFrame | None = None, meta: dict[str, str] | None = None) -> None:
    """Replace whole canonical tables, optionally the snapshots and _meta keys, in one transaction (demo)."""
    with transaction(con):
        for table, frame in frames.items():
            _replace_rows(con, table, frame, [c.name for c in columns(table)])
        if snapshots is not None:
            names = ["snapshot_date", "upload_id", *(c.name for c in columns("opportunities"))]
            _replace_rows(con, "_opportunity_snapshots", snapshots, names)
        for key, value in (meta or {}).items():
            set_meta(con, key, value)


def dumps(obj: object) -> str:
    """JSON text with dates as ISO strings."""
    return json.dumps(obj, default=str)
