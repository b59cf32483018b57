"""Derived data computed once per source frame: the costly intermediate steps metrics and pages share.

Frames never change once built (a new upload gives new frames), so whatever is derived from a frame
can be kept for as long as that frame lives and reused by every metric, trend point and page that asks
again: stage history placed on the funnel, month-end MRR, a column's distinct values. The results live
on the owner object itself, so they go when it goes (also when a result refers back to its owner, as
frames derived from frames do); each owner keeps at most `limit` results per name.

Memory is bounded in an app process, where computations run inside `scope()` (one cached result each):
- a transient value (the tables as known on a past day, for one forecast) is dropped when the outermost
  scope ends;
- when it ends, the derived frames of all owners together are trimmed to BUDGET_BYTES, least recently
  used first, so pages visited earlier do not keep gigabytes of intermediate frames at a million deals.
  A trimmed value is computed again if asked again. Nothing is trimmed while any computation runs,
  in any thread (sessions compute at the same time).
Outside any scope (the metrics command, tests) values are kept as long as their owner.
"""
from __future__ import annotations

import dataclasses
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import polars as pl

T = TypeVar("T")

_ATTR = "_revops_derived"
_LOCK = threading.Lock()
DEFAULT_LIMIT = 64
_MISSING = object()
# Derived frames kept between computations, all owners together (see the module docstring).
BUDGET_BYTES = 256 * 2**20
# Values smaller than this are not counted (scalars, a few rows): the per-name limits bound them.
_COUNTED_FROM = 64 * 2**10

Key = tuple[str, Hashable]


class _Store(OrderedDict):  # type: ignore[type-arg]
    """An owner's derived values, oldest first (a class of its own so that it can be referred to weakly)."""


# The transient values made in the current outermost scope: (their store, their key).
_SCOPE: ContextVar[list[tuple[weakref.ref[_Store], Key]] | None] = ContextVar("revops_memo_scope", default=None)
# Counted values of every owner, least recently used first: (id of store, key) -> (store, bytes).
_USED: OrderedDict[tuple[int, Key], tuple[weakref.ref[_Store], int]] = OrderedDict()
_TOTAL = [0]
# Values being made, by (id of owner, key): a second thread asking waits on the lock instead of making it again.
_MAKING: dict[tuple[int, Key], threading.RLock] = {}
# Outermost scopes running now, in any thread: derived frames are trimmed only when none is (one could be using them).
_RUNNING = [0]


def nbytes(value: object, depth: int = 0) -> int:
    """About how many bytes a value holds in Polars frames and series (also inside tuples, lists, dicts and
    dataclasses); 0 for anything else."""
    if isinstance(value, (pl.DataFrame, pl.Series)):
        return int(value.estimated_size())
    if depth > 3:
        return 0
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return sum(nbytes(v, depth + 1) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    return 0


def _store(owner: object) -> _Store:
    store = owner.__dict__.get(_ATTR)
    if store is None:
        store = owner.__dict__[_ATTR] = _Store()
    return store


def _uncount(store: _Store, key: Key) -> None:
    entry = _USED.pop((id(store), key), None)
    if entry is not None:
        _TOTAL[0] -= entry[1]


def _count(store: _Store, key: Key, value: object) -> None:
    _uncount(store, key)
    size = nbytes(value)
    if size >= _COUNTED_FROM:
        _USED[(id(store), key)] = (weakref.ref(store), size)
        _TOTAL[0] += size


def derived(owner: object, name: str, make: Callable[[], T], key: Hashable = None, *,
            limit: int = DEFAULT_LIMIT, transient: bool = False) -> T:
    """make(), computed once per `owner` object, `name` and `key`; later calls return the same value.

    `owner` must be immutable in fact (a Polars frame or a Frames): the cache cannot see a mutation.
    Threads asking at once for the same value wait for the one computing it and share it (two app
    sessions, or computations run side by side such as the handoffs, often start from the same costly
    frame). A
    transient value made inside a scope() is kept until the outermost scope ends (outside any scope,
    like any other).
    """
    k: Key = (name, key)
    hit = _hit(owner, k)
    if hit is not _MISSING:
        return hit  # type: ignore[return-value]
    with _LOCK:
        making = _MAKING.setdefault((id(owner), k), threading.RLock())
    try:
        with making:
            hit = _hit(owner, k)
            if hit is not _MISSING:
                return hit  # type: ignore[return-value]
            value = make()
            _keep(owner, name, k, value, limit, transient)
            return value
    finally:
        with _LOCK:
            if _MAKING.get((id(owner), k)) is making:
                del _MAKING[(id(owner), k)]


def _hit(owner: object, k: Key) -> object:
    """The value kept under `k` for `owner` (marked as just used), else _MISSING."""
    with _LOCK:
        store = _store(owner)
        hit = store.get(k, _MISSING)
        if hit is not _MISSING:
            store.move_to_end(k)
            if (id(store), k) in _USED:
                _USED.move_to_end((id(store), k))
        return hit


def _keep(owner: object, name: str, k: Key, value: object, limit: int, transient: bool) -> None:
    """Keep a value just made (see derived)."""
    with _LOCK:
        store = _store(owner)
        store[k] = value
        store.move_to_end(k)
        _count(store, k, value)
        same_name = [s for s in store if s[0] == name]
        for stale in same_name[:max(len(same_name) - limit, 0)]:
            del store[stale]
            _uncount(store, stale)
        made = _SCOPE.get()
        if transient and made is not None:
            made.append((weakref.ref(store), k))


def _trim(budget: int) -> None:
    """Drop counted values, least recently used first, until they hold at most `budget` bytes (under _LOCK)."""
    for used_key, (ref, size) in list(_USED.items()):
        if ref() is None:  # its owner is gone, and the value with it
            del _USED[used_key]
            _TOTAL[0] -= size
    while _TOTAL[0] > budget and _USED:
        (_, k), (ref, size) = _USED.popitem(last=False)
        _TOTAL[0] -= size
        store = ref()
        if store is not None:
            store.pop(k, None)


@contextmanager
def scope() -> Iterator[None]:
    """One computation: when the outermost scope ends, its transient values go and derived frames are trimmed."""
    if _SCOPE.get() is not None:
        yield
        return
    made: list[tuple[weakref.ref[_Store], Key]] = []
    token = _SCOPE.set(made)
    with _LOCK:
        _RUNNING[0] += 1
    try:
        yield
    finally:
        _SCOPE.reset(token)
        with _LOCK:
            _RUNNING[0] -= 1
            for store_ref, k in made:
                store = store_ref()
                if store is not None:
                    store.pop(k, None)
                    _uncount(store, k)
            if _RUNNING[0] == 0:
                _trim(BUDGET_BYTES)


def forget(owner: object) -> None:
    """Drop everything derived from `owner` (tests and benchmarks)."""
    with _LOCK:
        store = owner.__dict__.pop(_ATTR, None)
        for k in list(store or ()):
            _uncount(store, k)


__all__ = ["BUDGET_BYTES", "derived", "forget", "nbytes", "scope"]
