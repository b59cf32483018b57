"""python -m revops ingest / uploads / undo."""
from __future__ import annotations

import argparse
import getpass
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from revops import store
from revops.errors import UserError
from revops.ingest.load import load, preview, undo, upload_log
from revops.ingest.read import read_raw
from revops.schema import TABLES

# DuckDB's memory limit while a CLI upload only appends (to an empty table).
APPEND_MEMORY_LIMIT = "SET memory_limit = '128MB'"


def parse_maps(pairs: list[str]) -> dict[str, str]:
    """--map SOURCE=column pairs (the source header exactly as in the file; the last '=' splits)."""
    out: dict[str, str] = {}
    for pair in pairs:
        src, sep, dst = pair.rpartition("=")
        if not sep or not src:
            raise UserError(f"--map expects SOURCE=column, got “{pair}”.")
        out[src] = dst.strip()
    return out


def _appends_only(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether an upload into `table` only appends: the table is empty, or the demo company is about to go."""
    if table not in TABLES:
        return False
    return store.is_demo(con) or not con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"


def cli_ingest(args: argparse.Namespace) -> int:
    """Preview and load a file; print the upload id, counts and the reasons rows were rejected."""
    path = Path(args.file)
    if not path.exists():
        raise UserError(f"The file {path} does not exist.")
    maps = parse_maps(args.map) or None
    # The file is read while the database opens (a new file's tables are created meanwhile).
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(read_raw, path, path.name) if args.table in (None, *TABLES) else None
        with store.connect(args.db) as con:
            pv = preview(path, path.name, args.table, maps, db=con, raw=ahead.result() if ahead else None)
            for note in pv.notices:
                print(f"note: {note}")
            if args.rejects and pv.rows_rejected:
                Path(args.rejects).write_bytes(pv.rejects_csv())
                print(f"rejected rows written to {args.rejects}")
            if _appends_only(con, pv.table):
                # Nothing stored to compare with: DuckDB only appends, and the blocks it writes are never read
                # again by this one-shot process, so its cache of them is kept small (a big first load peaks lower).
                con.execute(APPEND_MEMORY_LIMIT)
            result = load(con, pv, as_of=args.as_of, user=_user(), strict=args.strict)
    print(result.summary())
    for row in pv.reasons().iter_rows(named=True):
        col = f"{row['column']}: " if row["column"] else ""
        print(f"  rejected {row['rows']}: {col}{row['problem']} (lines {row['lines']})")
    return 0


def cli_uploads(args: argparse.Namespace) -> int:
    """Print the upload log (a table, or JSON objects with --json)."""
    log = upload_log(args.db)
    rows = [
        {"upload_id": r["upload_id"], "table": r["table_name"], "file": r["file_name"], "sha256": r["sha256"],
         "rows_read": r["rows_read"], "rows_loaded": r["rows_loaded"], "rows_rejected": r["rows_rejected"],
         "rows_inserted": r["rows_inserted"], "rows_replaced": r["rows_replaced"], "user": r["user_name"],
         "at": r["uploaded_at"].isoformat(timespec="seconds") if r["uploaded_at"] else None,
         "as_of": r["as_of"].isoformat() if r["as_of"] else None,
         "undone_at": r["undone_at"].isoformat(timespec="seconds") if r["undone_at"] else None}
        for r in log.iter_rows(named=True)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No uploads yet.")
        return 0
    for r in rows:
        state = f"  undone {r['undone_at']}" if r["undone_at"] else ""
        print(f"{r['upload_id']:>5}  {r['at']}  {r['table']:<14} {r['file']}  loaded {r['rows_loaded']}, "
              f"rejected {r['rows_rejected']}  by {r['user']}{state}")
    return 0


def cli_undo(args: argparse.Namespace) -> int:
    """Undo one upload."""
    done = undo(args.db, args.upload_id)
    print(f"Undid upload {done.upload_id} ({done.table}): restored {done.rows_restored} rows it had replaced, "
          f"removed {done.rows_removed} rows it had added.")
    return 0
