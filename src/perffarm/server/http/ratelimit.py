"""Rate limits (sign-in attempts, device authorizations): a moving window per key (client
address, account), by the ``limits`` library, over a storage every server process shares
(``store/ratelimits.py``; in memory when none is given)."""

from __future__ import annotations

import threading
import time

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, MovingWindowSupport
from limits.strategies import MovingWindowRateLimiter
from starlette.responses import JSONResponse


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key."""

    def __init__(
        self,
        limit: int = 10,
        window: float = 60.0,
        storage: MovingWindowSupport | None = None,
        *,
        what: str = "sign-in attempts",
    ) -> None:
        self.item = RateLimitItemPerSecond(limit, max(1, round(window)))
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())  # type: ignore[arg-type]
        self.what = what
        # Checking every key, then recording every key, is one decision.
        self._lock = threading.Lock()

    def hit(self, *keys: str) -> float:
        """Record an attempt for every key; seconds to wait when any key is over its limit
        (then nothing is recorded)."""
        with self._lock:
            blocked = [key for key in keys if not self._limiter.test(self.item, key)]
            if not blocked:
                for key in keys:
                    self._limiter.hit(self.item, key)
                return 0.0
            reset = max(self._limiter.get_window_stats(self.item, k).reset_time for k in blocked)
        return max(reset - time.time(), 0.001)


def too_many(wait: float, what: str = "sign-in attempts") -> JSONResponse:
    seconds = str(max(1, int(wait + 0.999)))
    detail = f"too many {what}: wait {seconds} s and try again"
    return JSONResponse(
        {"detail": detail, "errors": []}, status_code=429, headers={"Retry-After": seconds}
    )
