"""Derived data computed once per source frame: the costly intermediate steps metrics and pages share.

Frames never change once built (a new upload gives new frames), so whatever is derived from a frame
can be kept for as long as that frame lives and reused by every metric, trend point and page that asks
again: stage history placed on the funnel, month-end MRR, a column's distinct values. The results live
on the owner object itself, so they go when it goes (also when a result refers back to its owner, as
frames derived from frames do); each owner keeps at most `limit` results per name.

A few results are big and serve one computation only (the tables as known on a past day, for one
forecast): made with transient=True inside a `scope()`, they are dropped when the outermost scope ends.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_ATTR = "_revops_derived"
_LOCK = threading.Lock()
DEFAULT_LIMIT = 64
_MISSING = object()


class _Store(OrderedDict):  # type: ignore[type-arg]
    """An owner's derived values, oldest first (a class of its own so a scope can refer to it weakly)."""


# The transient values made in the current outermost scope: (their store, their key).
_SCOPE: ContextVar[list[tuple[weakref.ref[_Store], tuple[str, Hashable]]] | None] = ContextVar(
    "revops_memo_scope", default=None)


def _store(owner: object) -> _Store:
    store = owner.__dict__.get(_ATTR)
    if store is None:
        store = owner.__dict__[_ATTR] = _Store()
    return store


def derived(owner: object, name: str, make: Callable[[], T], key: Hashable = None, *,
            limit: int = DEFAULT_LIMIT, transient: bool = False) -> T:
    """make(), computed once per `owner` object, `name` and `key`; later calls return the same value.

    `owner` must be immutable in fact (a Polars frame or a Frames): the cache cannot see a mutation.
    Two threads asking at once may both compute; the values are equal, one is kept. A transient
    value made inside a scope() is kept until the outermost scope ends (outside any scope, like any other).
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
        made = _SCOPE.get()
        if transient and made is not None:
            made.append((weakref.ref(store), (name, key)))
    return value


@contextmanager
def scope() -> Iterator[None]:
    """One computation: transient values derived inside it are dropped when the outermost scope ends."""
    if _SCOPE.get() is not None:
        yield
        return
    made: list[tuple[weakref.ref[_Store], tuple[str, Hashable]]] = []
    token = _SCOPE.set(made)
    try:
        yield
    finally:
        _SCOPE.reset(token)
        with _LOCK:
            for store_ref, k in made:
                store = store_ref()
                if store is not None:
                    store.pop(k, None)


def forget(owner: object) -> None:
    """Drop everything derived from `owner` (tests and benchmarks)."""
    with _LOCK:
        owner.__dict__.pop(_ATTR, None)


__all__ = ["derived", "forget", "scope"]
