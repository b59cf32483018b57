"""The one place Streamlit caches: frames and results keyed on the store's data version."""
from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from revops import store
from revops.frames import Filters, Frames, apply_filters, default_as_of, load_frames
from revops.period import Period

T = TypeVar("T")
_BUILD_LOCK = threading.Lock()
DEMO_SCALE = 5000


def db_path() -> Path:
    """The DuckDB file of this app process ($REVOPS_DB or data/revops.duckdb)."""
    return store.resolve_db(None)


def ensure_data() -> bool:
    """Build the demo company on first run when the DuckDB file is missing; True if it built it."""
    path = db_path()
    if path.exists():
        return False
    with _BUILD_LOCK:
        if path.exists():
            return False
        from revops.demo import build_demo
        with st.spinner("First run: building the demo company…"):
            build_demo(path, seed=7, scale=DEMO_SCALE)
        return True


def version() -> int:
    """The store's data version now (bumped by every upload, undo and settings change)."""
    return store.data_version(db_path())


@st.cache_resource(max_entries=2, show_spinner=False)
def _frames(db: str, data_version: int) -> Frames:
    with store.connect(db) as con:
        return load_frames(con)


def all_frames() -> Frames:
    """Every table, unfiltered, for the current data version."""
    return _frames(str(db_path()), version())


@st.cache_resource(max_entries=32, show_spinner=False)
def _filtered(db: str, data_version: int, filters: Filters) -> Frames:
    return apply_filters(_frames(db, data_version), filters)


def frames(filters: Filters) -> Frames:
    """The tables restricted to the sidebar filters, for the current data version."""
    return _filtered(str(db_path()), version(), filters)


@st.cache_resource(max_entries=512, show_spinner=False)
def _memo(db: str, data_version: int, name: str, key: str, _fn: Callable[..., Any], _args: tuple) -> Any:
    return _fn(*_args)


def cached(fn: Callable[..., T], filters: Filters, *args: Any) -> T:
    """fn(frames(filters), *args), computed once per data version, filters and arguments.

    The arguments' repr is the cache key, so pass plain values (dates, numbers, strings,
    frozen dataclasses), never frames.
    """
    v = version()
    db = str(db_path())
    f = _filtered(db, v, filters)
    return _memo(db, v, f"{fn.__module__}.{fn.__qualname__}", repr((filters, args)), fn, (f, *args))


def default_period(filters: Filters | None = None) -> Period:
    """The 365 days ending at the default as_of of the (unfiltered) data."""
    f = all_frames()
    return Period.ending(default_as_of(f), fiscal_start_month=f.settings.fiscal_year_start_month)


def today() -> dt.date:
    """Today's date (one place, so tests can reason about it)."""
    return dt.date.today()


@st.cache_resource(max_entries=2, show_spinner=False)
def _is_demo(db: str, data_version: int) -> bool:
    with store.connect(db) as con:
        return store.is_demo(con)


def is_demo() -> bool:
    """Whether the file holds the built-in demo company."""
    return _is_demo(str(db_path()), version())
