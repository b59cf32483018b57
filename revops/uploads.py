"""Uploads in the DuckDB file: upsert by key in one transaction, the upload log, undo, saved mappings."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import duckdb
import polars as pl

from revops import store
from revops.errors import UserError
from revops.schema import MODELS, TABLES, columns

_IN, _CHANGED, _OLD = "_rv_in", "_rv_changed", "_rv_old"
_SIDE_BY_SIDE = 2  # a big upload goes in as this many streams, read by DuckDB on as many threads
_BIG = 1 << 17  # rows from which an upload is worth splitting


@dataclass(frozen=True)
class Written:
    """What one upload did to the file."""

    upload_id: int | None
    rows_inserted: int
    rows_replaced: int
    rows_unchanged: int
    unchanged: bool
    duplicate_of: int | None
    as_of: dt.date
    removed_demo: bool = False


@dataclass(frozen=True)
class Undone:
    """What undoing an upload restored."""

    upload_id: int
    table: str
    rows_restored: int
    rows_removed: int


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Rows:
    """A Polars frame as an Arrow C stream: DuckDB reads it without pyarrow, afresh for every statement."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow PyCapsule interface (string views go in without a copy)."""
        return self.frame.__arrow_c_stream__(requested_schema)


def _register(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> tuple[str, list[str]]:
    """(SQL source reading the frame, names to unregister): a big frame is split so DuckDB reads it in parallel."""
    # One stream is read by one thread; UNION ALL of a few keeps the rows in order and uses every core.
    n = _SIDE_BY_SIDE if frame.height >= _BIG else 1
    step = -(-frame.height // n)
    names = [f"{name}_{i}" for i in range(n)]
    for i, part in enumerate(names):
        con.register(part, _Rows(frame.slice(i * step, step)))
    return "(" + " UNION ALL ".join(f"SELECT * FROM {part}" for part in names) + ")", names


def _key_match(table: str, left: str, right: str) -> str:
    """SQL condition matching two aliases on the table's key (nullable key parts match null to null)."""
    specs = {c.name: c for c in columns(table)}
    parts = []
    for k in MODELS[table].key:
        op = "=" if specs[k].required else "IS NOT DISTINCT FROM"
        parts.append(f"{left}.{_q(k)} {op} {right}.{_q(k)}")
    return " AND ".join(parts)


def _typed_select(table: str, source: str) -> str:
    """SELECT of a registered frame cast to the table's column types, in the table's column order."""
    cols = ", ".join(f"CAST({_q(c.name)} AS {c.duckdb_type}) AS {_q(c.name)}" for c in columns(table))
    return f"SELECT {cols} FROM {source}"


def header_signature(headers: list[str]) -> str:
    """Key of a saved mapping: the file's header list, exactly."""
    return hashlib.sha256("\x1f".join(headers).encode("utf-8")).hexdigest()


def saved_mapping(con: duckdb.DuckDBPyConnection, headers: list[str]) -> tuple[str, dict[str, str]] | None:
    """(table, mapping) saved for files with exactly these headers, if any."""
    rows = con.execute("SELECT table_name, mapping FROM _mappings WHERE header_signature = ?",
                       [header_signature(headers)]).fetchall()
    return (rows[0][0], json.loads(rows[0][1])) if rows else None


def save_mapping(con: duckdb.DuckDBPyConnection, headers: list[str], table: str, mapping: dict[str, str]) -> None:
    """Remember a mapping for the next file with the same headers (inside the caller's transaction)."""
    con.execute("INSERT OR REPLACE INTO _mappings VALUES (?, ?, ?, ?)",
                [header_signature(headers), table, json.dumps(mapping), dt.datetime.now()])


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for name in (_IN, _CHANGED, _OLD):
        con.execute(f"DROP TABLE IF EXISTS temp.{name}")


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> int:
    rows = con.execute(sql, params or []).fetchall()  # fetchall: DuckDB 2 wants every result finished
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def write_upload(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, extras: pl.DataFrame, *,
                 file_name: str, sha256: str, rows_read: int, rows_rejected: int, as_of: dt.date,
                 user: str, mapping: dict[str, str], remember: list[str] | None = None) -> Written:
    """_write_upload inside this process's write turn: no other upload lands between comparison and commit."""
    with store.write_lock():
        return _write_upload(con, table, frame, extras, file_name=file_name, sha256=sha256, rows_read=rows_read,
                             rows_rejected=rows_rejected, as_of=as_of, user=user, mapping=mapping,
                             remember=remember)


def _write_upload(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, extras: pl.DataFrame, *,
                  file_name: str, sha256: str, rows_read: int, rows_rejected: int, as_of: dt.date,
                  user: str, mapping: dict[str, str], remember: list[str] | None = None) -> Written:
    """Upsert the rows by key in ONE transaction, keeping what they replaced so undo can restore it.

    Rows identical to what is stored are left alone; when nothing would change (the same file
    again), nothing is written and the earlier upload of the same file is reported.
    Undo bookkeeping in _undo_<table>: 'replaced' rows in full, 'inserted' keys; for
    opportunities the upload's snapshot already lists its keys, so 'unchanged' keys are kept
    instead of 'inserted' ones (a first load of a million deals writes no undo rows at all).
    """
    names = [c.name for c in columns(table)]
    t = _q(table)
    match = _key_match(table, "t", "c")
    keys = ", ".join(_q(k) for k in MODELS[table].key)
    undo = _q(f"_undo_{table}")
    # The first real upload replaces the demo company: its made-up rows must not mix with real ones.
    removed_demo = store.is_demo(con)
    _drop_temp(con)
    # Arrow string views: no copy of the text on the way in, and DuckDB appends them ~3x faster than large strings.
    source, registered = _register(con, "_rv_frame", frame.select(names))
    try:
        incoming = f"({_typed_select(table, source)})"
        # Compared with an empty table or the demo's, about to be emptied, every incoming row is new.
        empty = removed_demo or _count(con, f"SELECT count(*) FROM {t}") == 0
        overlap = 0 if empty else _count(con, f"SELECT count(*) FROM {incoming} c SEMI JOIN {t} t ON {match}")
        if overlap:
            # Only rows whose key is already stored can be unchanged or replace something.
            con.execute(f"CREATE TEMP TABLE {_IN} AS SELECT * FROM {incoming}")
            incoming = _IN
            con.execute(
                f"CREATE TEMP TABLE {_CHANGED} AS (SELECT * FROM {_IN} c SEMI JOIN {t} t ON {match} "
                f"EXCEPT SELECT t.* FROM {t} t SEMI JOIN {_IN} c ON {match}) "
                f"UNION ALL (SELECT * FROM {_IN} c ANTI JOIN {t} t ON {match})")
            changed_src = _CHANGED
            changed = _count(con, f"SELECT count(*) FROM {_CHANGED}")
        else:
            changed_src, changed = incoming, frame.height
        snapshot_same = True
        if table == "opportunities":
            snapshot_same = changed == 0 and _count(
                con, "SELECT count(*) FROM _opportunity_snapshots WHERE snapshot_date = ?", [as_of]) > 0 and _count(
                con, f"SELECT count(*) FROM (SELECT * FROM {incoming} EXCEPT SELECT {', '.join(map(_q, names))} "
                     f"FROM _opportunity_snapshots WHERE snapshot_date = ?)", [as_of]) == 0
        duplicate_of = _count(
            con, "SELECT max(upload_id) FROM _uploads WHERE sha256 = ? AND table_name = ? AND undone_at IS NULL",
            [sha256, table]) or None
        if changed == 0 and snapshot_same and not removed_demo:
            return Written(None, 0, 0, frame.height, True, duplicate_of, as_of, False)
        with store.transaction(con):
            upload_id = _count(con, "SELECT coalesce(max(upload_id), 0) + 1 FROM _uploads")
            replaced = 0
            if removed_demo:
                _clear_demo(con)
            if overlap:
                con.execute(f"CREATE TEMP TABLE {_OLD} AS SELECT t.* FROM {t} t SEMI JOIN {_CHANGED} c ON {match}")
                replaced = _count(con, f"SELECT count(*) FROM {_OLD}")
                con.execute(f"INSERT INTO {undo} SELECT ?, 'replaced', * FROM {_OLD}", [upload_id])
                con.execute(f"DELETE FROM {t} USING {_CHANGED} c WHERE {_key_match(table, t, 'c')}")
            if table == "opportunities":
                if overlap:
                    con.execute(f"INSERT INTO {undo} (upload_id, action, {keys}) SELECT ?, 'unchanged', {keys} "
                                f"FROM {_IN} t ANTI JOIN {_CHANGED} c ON {match}", [upload_id])
            elif overlap:
                con.execute(f"INSERT INTO {undo} (upload_id, action, {keys}) SELECT ?, 'inserted', {keys} "
                            f"FROM {_CHANGED} t ANTI JOIN {_OLD} c ON {match}", [upload_id])
            else:
                con.execute(f"INSERT INTO {undo} (upload_id, action, {keys}) SELECT ?, 'inserted', {keys} "
                            f"FROM {incoming} t", [upload_id])
            con.execute(f"INSERT INTO {t} SELECT * FROM {changed_src}")
            if table == "opportunities":
                _write_snapshot(con, upload_id, as_of, incoming)
            if extras.height:
                con.register("_rv_extras", _Rows(extras))
                try:
                    con.execute("INSERT INTO _extras SELECT ?, \"__line__\", row_key, data FROM _rv_extras",
                                [upload_id])
                finally:
                    con.unregister("_rv_extras")
            con.execute(
                "INSERT INTO _uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                [upload_id, table, file_name, sha256, rows_read, frame.height, rows_rejected,
                 changed - replaced, replaced, user, dt.datetime.now(), as_of, json.dumps(mapping)])
            if remember is not None:
                save_mapping(con, remember, table, mapping)
        return Written(upload_id, changed - replaced, replaced, frame.height - changed, False, duplicate_of, as_of,
                       removed_demo)
    finally:
        for part in registered:
            con.unregister(part)
        _drop_temp(con)


def _clear_demo(con: duckdb.DuckDBPyConnection) -> None:
    """Empty every canonical table and its bookkeeping and drop the demo mark (inside the caller's transaction)."""
    for table in TABLES:
        con.execute(f"DELETE FROM {_q(table)}")
        con.execute(f"DELETE FROM {_q('_undo_' + table)}")
    con.execute("DELETE FROM _opportunity_snapshots")
    con.execute("DELETE FROM _extras")
    store.set_meta(con, "demo", "0")


def _write_snapshot(con: duckdb.DuckDBPyConnection, upload_id: int, as_of: dt.date, incoming: str) -> None:
    """This upload's deals as the snapshot of its as-of date (an earlier same-day snapshot row is kept for undo)."""
    cols = ", ".join(_q(c.name) for c in columns("opportunities"))
    if _count(con, "SELECT count(*) FROM _opportunity_snapshots WHERE snapshot_date = ?", [as_of]):
        same_day = (f"FROM _opportunity_snapshots WHERE snapshot_date = ? "
                    f"AND opportunity_id IN (SELECT opportunity_id FROM {incoming})")
        con.execute(f"INSERT INTO _undo_opportunities SELECT ?, 'snapshot:' || upload_id, {cols} {same_day}",
                    [upload_id, as_of])
        con.execute(f"DELETE {same_day}", [as_of])
    con.execute(f"INSERT INTO _opportunity_snapshots SELECT ?, ?, * FROM {incoming}", [as_of, upload_id])


def _touched(table: str, where: str) -> str:
    """SQL of (upload_id, key...) rows each upload matching `where` wrote (inserted or replaced)."""
    if table == "opportunities":
        # An upload's snapshot lists every deal it carried; the ones it found unchanged are recorded.
        return (f"SELECT s.upload_id, s.opportunity_id FROM _opportunity_snapshots s WHERE {where.format('s')} "
                f"AND NOT EXISTS (SELECT 1 FROM _undo_opportunities u WHERE u.upload_id = s.upload_id "
                f"AND u.action = 'unchanged' AND u.opportunity_id = s.opportunity_id)")
    keys = ", ".join(f"u.{_q(k)}" for k in MODELS[table].key)
    return (f"SELECT u.upload_id, {keys} FROM {_q('_undo_' + table)} u WHERE {where.format('u')} "
            f"AND u.action IN ('replaced', 'inserted')")


def undo_upload(con: duckdb.DuckDBPyConnection, upload_id: int) -> Undone:
    """Restore exactly the rows an upload replaced and remove those it inserted, its snapshot and extras.

    The overlap check and the restore run in this process's one write turn, so they see the same uploads.
    """
    with store.write_lock():
        return _undo_upload(con, upload_id)


def _undo_upload(con: duckdb.DuckDBPyConnection, upload_id: int) -> Undone:
    """undo_upload, inside the write turn."""
    rows = con.execute("SELECT table_name, undone_at, as_of FROM _uploads WHERE upload_id = ?", [upload_id]).fetchall()
    if not rows:
        raise UserError(f"There is no upload {upload_id}.")
    table, undone_at, as_of = rows[0]
    if undone_at is not None:
        raise UserError(f"Upload {upload_id} was already undone on {undone_at:%Y-%m-%d %H:%M}.")
    undo = _q(f"_undo_{table}")
    mine = f"({_touched(table, '{}.upload_id = ' + str(int(upload_id)))})"
    later_rows = f"({_touched(table, '{}.upload_id > ' + str(int(upload_id)))})"
    later = con.execute(
        f"SELECT DISTINCT b.upload_id, u.file_name FROM {mine} a JOIN {later_rows} b ON {_key_match(table, 'a', 'b')} "
        f"JOIN _uploads u ON u.upload_id = b.upload_id WHERE u.undone_at IS NULL "
        f"UNION SELECT DISTINCT b.upload_id, u.file_name FROM _undo_opportunities b "
        f"JOIN _uploads u ON u.upload_id = b.upload_id WHERE b.action = ? AND u.undone_at IS NULL "
        f"ORDER BY 1 DESC", [f"snapshot:{upload_id}"]).fetchall()
    if later:
        newest, name = later[0]
        raise UserError(
            f"Upload {upload_id} cannot be undone yet: upload {newest} ({name}) later changed some of the same "
            f"{table} rows. Undo upload {newest} first.")
    t = _q(table)
    names = ", ".join(_q(c.name) for c in columns(table))
    keys = ", ".join(_q(k) for k in MODELS[table].key)
    with store.transaction(con):
        touched = _count(con, f"SELECT count(*) FROM {mine}")
        restored = _count(con, f"SELECT count(*) FROM {undo} WHERE upload_id = ? AND action = 'replaced'", [upload_id])
        con.execute(f"DELETE FROM {t} USING (SELECT DISTINCT {keys} FROM {mine}) c WHERE {_key_match(table, t, 'c')}")
        con.execute(f"INSERT INTO {t} SELECT {names} FROM {undo} WHERE upload_id = ? AND action = 'replaced'",
                    [upload_id])
        if table == "opportunities":
            con.execute("DELETE FROM _opportunity_snapshots WHERE upload_id = ?", [upload_id])
            con.execute(
                f"INSERT INTO _opportunity_snapshots SELECT ?, CAST(split_part(action, ':', 2) AS BIGINT), {names} "
                f"FROM _undo_opportunities WHERE upload_id = ? AND action LIKE 'snapshot:%'", [as_of, upload_id])
        con.execute("DELETE FROM _extras WHERE upload_id = ?", [upload_id])
        con.execute(f"DELETE FROM {undo} WHERE upload_id = ?", [upload_id])
        con.execute("UPDATE _uploads SET undone_at = ? WHERE upload_id = ?", [dt.datetime.now(), upload_id])
    return Undone(upload_id, table, restored, touched - restored)


def list_uploads(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The upload log, newest first."""
    return con.sql(
        "SELECT upload_id, table_name, file_name, sha256, rows_read, rows_loaded, rows_rejected, rows_inserted, "
        "rows_replaced, user_name, uploaded_at, as_of, undone_at FROM _uploads ORDER BY upload_id DESC").pl()


def extras(con: duckdb.DuckDBPyConnection, upload_id: int) -> pl.DataFrame:
    """Columns of an upload that matched no canonical column, one JSON object per row."""
    return con.sql("SELECT row_number, row_key, data FROM _extras WHERE upload_id = ? ORDER BY row_number",
                   params=[upload_id]).pl()
