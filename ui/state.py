"""The one place the app caches: frames and results keyed on the store's data version."""
from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import streamlit as st

from revops import memo, store
from revops.errors import user_message
from revops.frames import Filters, Frames, apply_filters, default_as_of, distinct_values, open_frames
from revops.period import Period

T = TypeVar("T")
_BUILD_LOCK = threading.Lock()
DEMO_SCALE = 5000


def require_router() -> None:
    """Rerun through app.py when Streamlit ran a page file on its own; call it first in a page.

    With a pages/ folder beside app.py, a server's first request to a deep link (/operational)
    runs the page file directly (Streamlit's legacy folder mode, until some run calls
    st.navigation): no auth gate, no demo build, no banner. AppTest.switch_page does the same
    on every run. Leaving that mode and rerunning sends the same page through the router.
    """
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


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


_VERSION_SEEN: dict[str, tuple[tuple, int]] = {}


def open_problem(exc: BaseException) -> str:
    """The sentence to show when the database file cannot be opened or built."""
    if isinstance(exc, store.StoreBusy):
        return str(exc)
    if isinstance(exc, duckdb.Error):
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return (f"The database file {db_path()} could not be opened ({detail}). Move it away to start again "
                "with the demo company, or set REVOPS_DB to another file.")
    return user_message(exc)


def version() -> int:
    """The store's data version now (bumped by every upload, undo and settings change).

    Opening the file costs ~0.1 s and takes its lock, and a page asks once per cached result;
    so the version is read again only when the file (or its log) changed since the last read.
    """
    path = db_path()
    stamp = store.file_stamp(path)  # taken before the read: a commit racing the read makes the next call re-read
    seen = _VERSION_SEEN.get(str(path))
    if seen is not None and stamp[0] is not None and seen[0] == stamp:
        return seen[1]
    current = store.data_version(path)
    _VERSION_SEEN[str(path)] = (stamp, current)
    return current


@st.cache_resource(max_entries=2, show_spinner=False)
def _frames(db: str, data_version: int) -> Frames:
    # Tables are read on first use: a page pays only for the tables it needs, once per data version.
    return open_frames(db)


def all_frames() -> Frames:
    """Every table, unfiltered, for the current data version."""
    return _frames(str(db_path()), version())


# A filtered view holds its own copies of the tables it read (a third of the data for one segment of
# three, hundreds of MB at a million deals): only the latest one is kept. Its results stay cached; a view
# asked for again is filtered again, table by table as pages read them (about a second at that scale).
@st.cache_resource(max_entries=1, show_spinner=False)
def _filtered(db: str, data_version: int, filters: Filters) -> Frames:
    return apply_filters(_frames(db, data_version), filters)


def _view(db: str, data_version: int, filters: Filters) -> Frames:
    # No filter is the unfiltered frames themselves: not a view, so it never pushes the filtered one out.
    return _filtered(db, data_version, filters) if filters.active() else _frames(db, data_version)


def frames(filters: Filters) -> Frames:
    """The tables restricted to the sidebar filters, for the current data version."""
    return _view(str(db_path()), version(), filters)


_UNSET = object()


class Results:
    """Computed results, least recently used first, bounded by count and by the bytes of the frames they hold.

    A count alone lets a few drill-down tables of a million rows fill the process; past `budget_bytes`
    the oldest results go (and are computed again if asked again). The newest result is always kept.
    Each key is computed by one thread at a time: others asking for it wait and share its result.
    """

    def __init__(self, max_entries: int, budget_bytes: int) -> None:
        self.max_entries, self.budget_bytes = max_entries, budget_bytes
        self._lock = threading.Lock()
        self._values: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self._making: dict[tuple, threading.Lock] = {}
        self.total_bytes = 0

    def _hit(self, key: tuple) -> Any:
        with self._lock:
            hit = self._values.get(key, _UNSET)
            if hit is not _UNSET:
                self._values.move_to_end(key)
                return hit[0]  # type: ignore[index]
            return _UNSET

    def get(self, key: tuple, make: Callable[[], T]) -> T:
        """The result kept under `key`, or make()'s (then kept)."""
        hit = self._hit(key)
        if hit is not _UNSET:
            return hit  # type: ignore[no-any-return]
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:
            hit = self._hit(key)
            if hit is not _UNSET:
                return hit  # type: ignore[no-any-return]
            try:
                value = make()
            finally:
                with self._lock:
                    self._making.pop(key, None)
            size = memo.nbytes(value)
            with self._lock:
                self._values[key] = (value, size)
                self.total_bytes += size
                while len(self._values) > 1 and (len(self._values) > self.max_entries
                                                 or self.total_bytes > self.budget_bytes):
                    _, (_, old_size) = self._values.popitem(last=False)
                    self.total_bytes -= old_size
            return value


# Results of `cached` for every session of this process (a drill-down table at a million deals is tens of MB).
_RESULTS = Results(max_entries=512, budget_bytes=128 * 2**20)


def _compute(fn: Callable[..., T], args: tuple) -> T:
    # One cached result is one computation: its transient intermediates go when it is done (memo.scope).
    with memo.scope():
        return fn(*args)


def cached(fn: Callable[..., T], filters: Filters, *args: Any) -> T:
    """fn(frames(filters), *args), computed once per data version, filters and arguments.

    The arguments' repr is the cache key, so pass plain values (dates, numbers, strings,
    frozen dataclasses), never frames.
    """
    v = version()
    db = str(db_path())
    f = _view(db, v, filters)
    return _RESULTS.get(_key(db, v, fn, filters, args), lambda: _compute(fn, (f, *args)))


def _key(db: str, data_version: int, fn: Callable[..., Any], filters: Filters, args: tuple) -> tuple:
    """What a result is kept under: the file, its data version, the function, the filters and arguments."""
    return (db, data_version, f"{fn.__module__}.{fn.__qualname__}", repr((filters, args)))


@st.cache_resource(max_entries=2, show_spinner=False)
def _default_as_of(db: str, data_version: int, today: dt.date) -> dt.date:
    return default_as_of(_frames(db, data_version), today)


def default_period(filters: Filters | None = None) -> Period:
    """The 365 days ending at the default as_of of the (unfiltered) data (worked out once per data version)."""
    f = all_frames()
    as_of = _default_as_of(str(db_path()), version(), dt.date.today())
    return Period.ending(as_of, fiscal_start_month=f.settings.fiscal_year_start_month)


@st.cache_resource(max_entries=2, show_spinner=False)
def _choices(db: str, data_version: int) -> dict[str, list[str]]:
    return distinct_values(_frames(db, data_version))


def filter_choices() -> dict[str, list[str]]:
    """The sidebar's filter choices (segments, regions, owners, sources), once per data version."""
    return _choices(str(db_path()), version())


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
