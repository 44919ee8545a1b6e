"""A token bucket with Alpaca's ``X-RateLimit-*`` headers (wall-clock time, like the real API).

The headers go on every REST response in every mode. A bucket that does not ``enforce`` (the
simulator's step mode, or ``rate_limit_per_minute=None``) counts requests against Alpaca's nominal
200 per minute and reports them the same way, but never answers 429.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

NOMINAL_PER_MINUTE = 200  # Alpaca's documented trading-API budget


class TokenBucket:
    """``per_minute`` requests per minute, refilled continuously; ``None`` counts against
    :data:`NOMINAL_PER_MINUTE` for the headers but never refuses."""

    def __init__(self, per_minute: int | None, now: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.enforce = per_minute is not None
        self.per_minute = per_minute if per_minute is not None else NOMINAL_PER_MINUTE
        self._now = now
        self._wall = wall
        self._tokens = float(self.per_minute)
        self._stamp = now()
        self.taken = 0  # requests counted (those it refused 429 included)

    def _refill(self) -> None:
        now = self._now()
        self._tokens = min(float(self.per_minute), self._tokens + (now - self._stamp) * self.per_minute / 60.0)
        self._stamp = now

    def take(self) -> bool:
        """Spend one token; False when the bucket is empty and enforced (the request gets a 429)."""
        self._refill()
        self.taken += 1
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return not self.enforce

    def headers(self) -> dict[str, str]:
        """Headers Alpaca sends on every REST response."""
        self._refill()
        missing = self.per_minute - self._tokens
        reset = self._wall() + missing * 60.0 / self.per_minute
        return {
            "X-RateLimit-Limit": str(self.per_minute),
            "X-RateLimit-Remaining": str(max(0, math.floor(self._tokens))),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
