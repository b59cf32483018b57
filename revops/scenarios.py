"""Named forecast scenarios (a set of levers) saved in the DuckDB file, listed and deleted."""
from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import polars as pl

from revops import store
from revops.errors import UserError
from revops.forecast import LEVERS, Levers

MAX_NAME = 60

# The scenarios last read from each file, with the file's stamp then (see store.file_stamp).
_READ: dict[str, tuple[tuple, dict[str, Levers]]] = {}
_READ_LOCK = threading.Lock()


def clean_name(name: str) -> str:
    """The scenario name trimmed, or a UserError saying what is wrong with it."""
    text = " ".join((name or "").split())
    if not text:
        raise UserError("Give the scenario a name before saving it.")
    if len(text) > MAX_NAME:
        raise UserError(f"Scenario names are at most {MAX_NAME} characters; this one has {len(text)}.")
    return text


def save_scenario(db: str | os.PathLike[str] | None, name: str, levers: Levers) -> str:
    """Save (or overwrite) the scenario `name` with its levers; returns the name as stored."""
    text = clean_name(name)
    with store.connect(db) as con, store.transaction(con):
        con.execute("INSERT OR REPLACE INTO _scenarios VALUES (?, ?, ?)",
                    [text, levers.model_dump_json(), dt.datetime.now().replace(microsecond=0)])
    _forget(db)
    return text


def load_scenarios(db: str | os.PathLike[str] | None) -> dict[str, Levers]:
    """Every saved scenario's levers by name, oldest first.

    The Forecast page asks on every move of a slider, and opening the file costs about a tenth of a
    second: the file is read again only when it changed since the last read (by any process).
    """
    path = store.resolve_db(db)
    stamp = store.file_stamp(path)  # taken before the read: a commit racing the read makes the next call read again
    with _READ_LOCK:
        seen = _READ.get(str(path))
    if seen is not None and stamp[0] is not None and seen[0] == stamp:
        return dict(seen[1])
    with store.connect(db) as con:
        rows = con.execute("SELECT name, levers FROM _scenarios ORDER BY saved_at, name").fetchall()
    saved = {name: Levers.model_validate_json(levers) for name, levers in rows}
    with _READ_LOCK:
        _READ[str(path)] = (stamp, saved)
    return dict(saved)


def _forget(db: str | os.PathLike[str] | None) -> None:
    """Read the scenarios again next time (this process just changed them)."""
    with _READ_LOCK:
        _READ.pop(str(store.resolve_db(db)), None)


def list_scenarios(db: str | os.PathLike[str] | None) -> pl.DataFrame:
    """The saved scenarios: name, saved_at and one column per lever, oldest first."""
    with store.connect(db) as con:
        rows = con.execute("SELECT name, levers, saved_at FROM _scenarios ORDER BY saved_at, name").fetchall()
    schema = {"name": pl.String, "saved_at": pl.Datetime("us"), **{k: pl.Float64 for k in LEVERS}}
    records = [{"name": name, "saved_at": saved_at, **Levers.model_validate_json(levers).model_dump()}
               for name, levers, saved_at in rows]
    return pl.DataFrame(records, schema=schema)


def delete_scenario(db: str | os.PathLike[str] | None, name: str) -> bool:
    """Delete the scenario `name`; False when there was none of that name."""
    with store.connect(db) as con, store.transaction(con):
        gone = con.execute("DELETE FROM _scenarios WHERE name = ? RETURNING name", [name]).fetchall()
    _forget(db)
    return bool(gone)


__all__ = ["clean_name", "delete_scenario", "list_scenarios", "load_scenarios", "save_scenario"]
