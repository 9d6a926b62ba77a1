"""Least-recently-used caches shared by the server's threads: ``cachetools.LRUCache``
behind a lock (a lookup costs about a microsecond, against milliseconds for the answers it
keeps; benchmarks/web_pages.py prints both figures)."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

V = TypeVar("V")


class SharedLru(Generic[V]):
    """At most ``size`` values, the least recently used one dropped first."""

    def __init__(self, size: int) -> None:
        self._items: LRUCache[Hashable, V] = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = value
