"""Pausing Python's cyclic garbage collector around bursts of allocation.

Reading or comparing thousands of results makes thousands of small acyclic objects at once;
the cyclic collector would walk them again and again while they are made, finding nothing
(a third of a 5,000-result comparison's time, seen in profiles). Pausing it is process-wide,
so it is kept brief, and a pause nested in another (or in another thread's) leaves the
collector as the outer one found it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
