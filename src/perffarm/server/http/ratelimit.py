"""Rate limits on sign-in attempts."""

from __future__ import annotations

import threading
import time
from collections import deque

from starlette.responses import JSONResponse


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (a sliding window).

    In memory, per server process: with N workers an attacker gets N times the attempts,
    which is still far too few to guess an argon2-protected password.
    """

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, *keys: str) -> float:
        """Record an attempt for every key; seconds to wait when any key is over its limit."""
        moment = time.monotonic()
        wait = 0.0
        with self._lock:
            if len(self._events) > 100_000:
                self._events.clear()
            for key in keys:
                events = self._events.setdefault(key, deque())
                while events and events[0] <= moment - self.window:
                    events.popleft()
                if len(events) >= self.limit:
                    wait = max(wait, events[0] + self.window - moment)
            if wait == 0.0:
                for key in keys:
                    self._events[key].append(moment)
        return wait


def too_many(wait: float) -> JSONResponse:
    seconds = str(max(1, int(wait + 0.999)))
    detail = f"too many sign-in attempts: wait {seconds} s and try again"
    return JSONResponse(
        {"detail": detail, "errors": []}, status_code=429, headers={"Retry-After": seconds}
    )
