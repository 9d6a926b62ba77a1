"""The dashboard's shared LRU caches (web/cache.py)."""

from __future__ import annotations

import threading

from perffarm.web.cache import SharedLru


def test_the_least_recently_used_value_goes_first() -> None:
    cache: SharedLru[str] = SharedLru(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # now "b" is the least recently used
    cache.put("c", "C")
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == ("A", "C")


def test_threads_share_one_cache() -> None:
    cache: SharedLru[int] = SharedLru(64)

    def work(start: int) -> None:
        for i in range(start, start + 1000):
            cache.put(i % 100, i)
            cache.get((i + 1) % 100)

    threads = [threading.Thread(target=work, args=(n * 1000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = [key for key in range(100) if cache.get(key) is not None]
    assert len(kept) == 64
