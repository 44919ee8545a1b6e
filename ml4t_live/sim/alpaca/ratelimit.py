"""A token bucket with Alpaca's ``X-RateLimit-*`` headers (wall-clock time, like the real API)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucket:
    """``per_minute`` requests per minute, refilled continuously; ``None`` disables limiting."""

    def __init__(self, per_minute: int | None, now: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self._now = now
        self._wall = wall
        self._tokens = float(per_minute or 0)
        self._stamp = now()

    def _refill(self) -> None:
        if self.per_minute is None:
            return
        now = self._now()
        self._tokens = min(float(self.per_minute), self._tokens + (now - self._stamp) * self.per_minute / 60.0)
        self._stamp = now

    def take(self) -> bool:
        """Spend one token; False when the bucket is empty (the request gets a 429)."""
        if self.per_minute is None:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def headers(self) -> dict[str, str]:
        """Headers Alpaca sends on every REST response."""
        if self.per_minute is None:
            return {}
        self._refill()
        missing = self.per_minute - self._tokens
        reset = self._wall() + missing * 60.0 / self.per_minute
        return {
            "X-RateLimit-Limit": str(self.per_minute),
            "X-RateLimit-Remaining": str(max(0, math.floor(self._tokens))),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
