"""Memo helpers keyed by object identity in front of value-keyed caches.

Frozen pydantic models (hardware, hierarchies, layers) hash by walking every field on every call
(``pydantic``'s ``hash_func``), so a ``lru_cache`` or dict keyed by them re-hashes the whole model
per lookup. A sweep point passes the *same* objects again and again (one hw per point, the
workload's layers for every point), so these helpers look an object up by ``id`` first (the
object is kept in the entry and compared with ``is``: a reused id never matches a dead object)
and fall back to the value-keyed path only for a new object. Results are those of the value path:
equal objects still share entries, and an identity hit returns what the value path gave.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")


class ValueKey:
    """A dict key standing for ``value``: equal to another one iff the values are equal, with the
    value's hash computed once (raises ``TypeError`` at construction for an unhashable value)."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: Hashable):
        self.value = value
        self._hash = hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValueKey):
            return NotImplemented
        return self.value is other.value or (self._hash == other._hash and self.value == other.value)


def _bounded_put(store: dict, key: Any, entry: Any, maxsize: int) -> None:
    if len(store) >= maxsize:
        del store[next(iter(store))]
    store[key] = entry


_KEYS: dict[int, tuple[Any, ValueKey]] = {}
_KEYS_MAX = 4096


def value_key(obj: Hashable) -> ValueKey:
    """:class:`ValueKey` of ``obj``, memoised by identity (bounded, FIFO)."""
    hit = _KEYS.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    key = ValueKey(obj)
    _bounded_put(_KEYS, id(obj), (obj, key), _KEYS_MAX)
    return key


def identity_memo(maxsize: int = 256) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: memoise a pure function by the identity of its first argument and the value of the
    others, in front of the function itself (typically an ``lru_cache`` by value). ``cache_clear``
    empties both."""

    def deco(fn: Callable[..., T]) -> Callable[..., T]:
        store: dict[tuple, tuple[Any, T]] = {}

        @functools.wraps(fn)
        def wrapper(first: Any, *rest: Any) -> T:
            key = (id(first), *rest)
            hit = store.get(key)
            if hit is not None and hit[0] is first:
                return hit[1]
            out = fn(first, *rest)
            _bounded_put(store, key, (first, out), maxsize)
            return out

        def cache_clear() -> None:
            store.clear()
            getattr(fn, "cache_clear", lambda: None)()

        wrapper.cache_clear = cache_clear  # type: ignore[attr-defined]
        return wrapper

    return deco


def clear_identity_keys() -> None:
    """Empty the :func:`value_key` memo."""
    _KEYS.clear()


__all__ = ["ValueKey", "clear_identity_keys", "identity_memo", "value_key"]
