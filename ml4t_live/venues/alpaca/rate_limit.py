"""A client-side token bucket so a rebalance of many symbols never meets a 429 storm.

Alpaca allows about 200 trading requests per minute per account. Every REST request the adapter
makes takes one token first; the bucket refills continuously at ``rate_per_minute / 60`` tokens a
second up to ``burst``. When the venue still answers 429, :meth:`TokenBucket.hold_until` empties
the bucket until the venue's reset time, so every caller (on every thread) backs off together
instead of each retrying on its own.

Thread-safe: the engine thread and a stream's loop thread (re-sync after a reconnect) share one.
The waiting is a ``Condition.wait`` with a deadline, never a busy loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ...errors import VenueError


class RateLimitTimeout(VenueError, TimeoutError):
    """No request token became available within the caller's timeout; the request was not sent.
    For a first submit that means the order was not placed (refused); for the look-up or the
    second attempt after a submit without an answer it does not: the first attempt may have
    landed, so the order is of unknown outcome (:mod:`.submit`, :mod:`.unknown`)."""


class TokenBucket:
    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_minute <= 0 or burst <= 0:
            raise ValueError("rate_per_minute and burst must be > 0")
        self.rate = rate_per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._blocked_until = 0.0
        self._cond = threading.Condition()
        self.waited_seconds = 0.0  # total time callers spent waiting (for reports)

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(
                self.burst, self._tokens + (now - self._stamp) * self.rate
            )
            self._stamp = now

    def delay(self) -> float:
        """Seconds until a token is available (0 when one is available now); takes nothing."""
        with self._cond:
            return self._delay_locked(self._clock())

    def _delay_locked(self, now: float) -> float:
        self._refill(now)
        if now < self._blocked_until:
            return self._blocked_until - now
        if self._tokens >= 1.0:
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def try_acquire(self) -> bool:
        with self._cond:
            if self._delay_locked(self._clock()) > 0:
                return False
            self._tokens -= 1.0
            return True

    def acquire(self, timeout: float) -> float:
        """Take one token, waiting at most ``timeout`` seconds; returns the time waited."""
        start = self._clock()
        deadline = start + timeout
        with self._cond:
            while True:
                now = self._clock()
                wait = self._delay_locked(now)
                if wait <= 0:
                    self._tokens -= 1.0
                    waited = now - start
                    self.waited_seconds += waited
                    return waited
                if now + wait > deadline:
                    raise RateLimitTimeout(
                        f"no Alpaca request slot within {timeout:.3g}s (budget "
                        f"{self.rate * 60:.0f}/min); the request was not sent"
                    )
                self._cond.wait(wait)

    def hold_until(self, until: float) -> None:
        """The venue said 429: no token until monotonic time ``until``, then a slow refill."""
        with self._cond:
            self._blocked_until = max(self._blocked_until, until)
            self._tokens = 0.0
            self._stamp = max(self._stamp, until)
            self._cond.notify_all()
