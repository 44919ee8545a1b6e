"""RequestLog: which requests the simulated gateway received, and when (on its loop thread).

Kinds are the decoded request's name (``ReqHistoricalData``, ``ReqRealTimeBars`` ...) or, for the
argument-less ones, IB's own (``currentTime``, ``openOrders`` ...). A test reads the counts and
arrival times (``time.monotonic()``) to check a client's request cadence against IB's pacing rules,
and waits for the n-th request of a kind without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque

#: arrival times kept per kind (the newest; counts are kept for all)
KEEP_TIMES = 4096


class RequestLog:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.times: dict[str, deque[float]] = {}
        self._changed = asyncio.Event()

    def add(self, kind: str) -> None:
        self.counts[kind] += 1
        self.times.setdefault(kind, deque(maxlen=KEEP_TIMES)).append(time.monotonic())
        self._changed.set()
        self._changed = asyncio.Event()

    def arrivals(self, kind: str) -> list[float]:
        return list(self.times.get(kind, ()))

    async def wait_for(self, kind: str, count: int) -> None:
        """Until ``count`` requests of ``kind`` arrived in all (the caller bounds the wait)."""
        while self.counts[kind] < count:
            await self._changed.wait()
