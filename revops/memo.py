"""Derived data computed once per source frame: the costly intermediate steps metrics and pages share.

Frames never change once built (a new upload gives new frames), so whatever is derived from a frame
can be kept for as long as that frame lives and reused by every metric, trend point and page that asks
again: stage history placed on the funnel, month-end MRR, a column's distinct values. Entries are keyed
on the owner's identity and dropped with it; each owner keeps at most `limit` results per name.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

# id(owner) -> (weak reference to the owner, {(name, key): value} in least-recently-used order)
_STORE: dict[int, tuple[weakref.ref, OrderedDict[tuple[str, Hashable], Any]]] = {}
_LOCK = threading.Lock()
DEFAULT_LIMIT = 64


def _forget(owner_id: int, ref: weakref.ref) -> None:
    if _LOCK is None or _STORE is None:  # interpreter shutdown: module globals are already gone
        return
    with _LOCK:
        entry = _STORE.get(owner_id)
        if entry is not None and entry[0] is ref:
            del _STORE[owner_id]


def derived(owner: object, name: str, make: Callable[[], T], key: Hashable = None, *, limit: int = DEFAULT_LIMIT) -> T:
    """make(), computed once per live `owner` object, `name` and `key`; later calls return the same value.

    `owner` must be immutable in fact (a Polars frame or a Frames): the cache cannot see a mutation.
    Two threads asking at once may both compute; the values are equal, one is kept.
    """
    owner_id = id(owner)
    with _LOCK:
        entry = _STORE.get(owner_id)
        if entry is not None and entry[0]() is owner:
            values = entry[1]
            hit = values.get((name, key), _MISSING)
            if hit is not _MISSING:
                values.move_to_end((name, key))
                return hit
    value = make()
    with _LOCK:
        entry = _STORE.get(owner_id)
        if entry is None or entry[0]() is not owner:
            ref = weakref.ref(owner, lambda r, i=owner_id: _forget(i, r))
            entry = _STORE[owner_id] = (ref, OrderedDict())
        values = entry[1]
        values[(name, key)] = value
        values.move_to_end((name, key))
        same_name = [k for k in values if k[0] == name]
        for stale in same_name[:max(len(same_name) - limit, 0)]:
            del values[stale]
    return value


class _Missing:
    pass


_MISSING = _Missing()


def clear() -> None:
    """Forget everything (tests and benchmarks)."""
    with _LOCK:
        _STORE.clear()


__all__ = ["clear", "derived"]
