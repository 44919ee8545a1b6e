"""The order-rate limit: at most N orders in any 60 s, and ceil(N / 6) in any 1 s.

Two deques of send times (POSIX seconds), one per window. A window is half-open,
``(now - width, now]``: an order sent exactly ``width`` seconds ago no longer counts. Each
deque holds at most its cap, and each time is appended and dropped once, so a check is O(1)
amortised. Only orders that leave are recorded (a refused order uses no budget). A clock
that steps back (NTP) only keeps old entries a little longer: the limit errs on the safe side.
"""

from __future__ import annotations

from collections import deque

MINUTE, SECOND = 60.0, 1.0


class OrderRate:
    def __init__(self, per_minute: int | None, per_second: int | None) -> None:
        self.per_minute = per_minute
        self.per_second = per_second
        self._minute: deque[float] = deque()
        self._second: deque[float] = deque()

    def refusal(self, now: float) -> str | None:
        """Why an order sent at ``now`` would break the limit (limit name first), else None."""
        if self.per_minute is None:
            return None
        _expire(self._minute, now - MINUTE)
        _expire(self._second, now - SECOND)
        if self.per_second is not None and len(self._second) >= self.per_second:
            return (f"max_orders_per_minute (burst): {len(self._second)} orders in the last second, "
                    f"the burst cap is ceil({self.per_minute} / 6) = {self.per_second} per second")  # fmt: skip
        if len(self._minute) >= self.per_minute:
            wait = self._minute[0] + MINUTE - now
            return (f"max_orders_per_minute: {len(self._minute)} orders in the last 60 s = the cap of "
                    f"{self.per_minute}; the next order may leave in {wait:.1f} s")  # fmt: skip
        return None

    def admit(self, now: float) -> str | None:
        """``refusal(now)``, and when there is none the send is recorded: one step, once per
        order that leaves (``refusal`` and ``record`` inlined)."""
        per_minute = self.per_minute
        if per_minute is None:
            return None
        minute, second = self._minute, self._second
        horizon = now - MINUTE
        while minute and minute[0] <= horizon:
            minute.popleft()
        horizon = now - SECOND
        while second and second[0] <= horizon:
            second.popleft()
        if len(minute) >= per_minute or (self.per_second is not None and len(second) >= self.per_second):
            return self.refusal(now)  # the reason (nothing left to expire)
        minute.append(now)
        second.append(now)
        return None

    def record(self, now: float) -> None:
        if self.per_minute is None:
            return
        self._minute.append(now)
        self._second.append(now)

    def in_last_minute(self, now: float) -> int:
        _expire(self._minute, now - MINUTE)
        return len(self._minute)


def _expire(times: deque[float], horizon: float) -> None:
    while times and times[0] <= horizon:
        times.popleft()
