"""Derived data computed once per source frame: the costly intermediate steps metrics and pages share.

Frames never change once built (a new upload gives new frames), so whatever is derived from a frame
can be kept for as long as that frame lives and reused by every metric, trend point and page that asks
again: stage history placed on the funnel, month-end MRR, a column's distinct values. The results live
on the owner object itself, so they go when it goes (also when a result refers back to its owner, as
frames derived from frames do); each owner keeps at most `limit` results per name.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_ATTR = "_revops_derived"
_LOCK = threading.Lock()
DEFAULT_LIMIT = 64
_MISSING = object()


def _store(owner: object) -> OrderedDict[tuple[str, Hashable], Any]:
    store = owner.__dict__.get(_ATTR)
    if store is None:
        store = owner.__dict__[_ATTR] = OrderedDict()
    return store


def derived(owner: object, name: str, make: Callable[[], T], key: Hashable = None, *,
            limit: int = DEFAULT_LIMIT) -> T:
    """make(), computed once per `owner` object, `name` and `key`; later calls return the same value.

    `owner` must be immutable in fact (a Polars frame or a Frames): the cache cannot see a mutation.
    Two threads asking at once may both compute; the values are equal, one is kept.
    """
    with _LOCK:
        store = _store(owner)
        hit = store.get((name, key), _MISSING)
        if hit is not _MISSING:
            store.move_to_end((name, key))
            return hit  # type: ignore[return-value]
    value = make()
    with _LOCK:
        store[(name, key)] = value
        store.move_to_end((name, key))
        same_name = [k for k in store if k[0] == name]
        for stale in same_name[:max(len(same_name) - limit, 0)]:
            del store[stale]
    return value


def forget(owner: object) -> None:
    """Drop everything derived from `owner` (tests and benchmarks)."""
    with _LOCK:
        owner.__dict__.pop(_ATTR, None)


__all__ = ["derived", "forget"]
