"""The order-rate limit: at most N orders in any 60 s, and ceil(N / 6) in any 1 s.

One deque of send times (POSIX seconds), oldest first. A window is half-open,
``(now - width, now]``: an order sent exactly ``width`` seconds ago no longer counts. The deque
holds at most the minute's cap; each time is appended and dropped once, so a check is O(1)
amortised. The burst cap ``K`` needs no second record: at least ``K`` orders went out in the last
second exactly when the ``K``-th most recent send is inside it. Only orders that leave are
recorded (a refused order uses no budget). Send times are kept in order: a clock that steps back
(NTP, a bar whose clock starts before the previous bar's last order) records the latest time
seen instead, so an order counts a little longer, never shorter: the limit errs on the safe side.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque

MINUTE, SECOND = 60.0, 1.0


class OrderRate:
    def __init__(self, per_minute: int | None, per_second: int | None) -> None:
        self.per_minute = per_minute
        #: the burst cap (no cap: the minute's, which the minute window enforces anyway)
        self.per_second = per_second
        self._burst = per_second if per_second is not None else (per_minute or 0)
        self._sent: deque[float] = deque()
        self._last = float("-inf")  # the latest send time recorded

    def refusal(self, now: float) -> str | None:
        """Why an order sent at ``now`` would break the limit (limit name first), else None."""
        if self.per_minute is None:
            return None
        sent = self._expire(now)
        in_second = self._in_last_second(now)
        if self.per_second is not None and in_second >= self.per_second:
            return (f"max_orders_per_minute (burst): {in_second} orders in the last second, "
                    f"the burst cap is ceil({self.per_minute} / 6) = {self.per_second} per second")  # fmt: skip
        if len(sent) >= self.per_minute:
            wait = sent[0] + MINUTE - now
            return (f"max_orders_per_minute: {len(sent)} orders in the last 60 s = the cap of "
                    f"{self.per_minute}; the next order may leave in {wait:.1f} s")  # fmt: skip
        return None

    def admit(self, now: float) -> str | None:
        """``refusal(now)``, and when there is none the send is recorded: one step, once per
        order that leaves."""
        per_minute = self.per_minute
        if per_minute is None:
            return None
        sent, horizon = self._sent, now - MINUTE
        while sent and sent[0] <= horizon:
            sent.popleft()
        n, burst = len(sent), self._burst
        if n >= per_minute or (n >= burst and sent[-burst] > now - SECOND):
            return self.refusal(now)  # the reason (nothing left to expire)
        last = self._last
        if now > last:
            self._last = last = now
        sent.append(last)
        return None

    def record(self, now: float) -> None:
        if self.per_minute is None:
            return
        self._last = max(self._last, now)
        self._sent.append(self._last)

    def in_last_minute(self, now: float) -> int:
        return len(self._expire(now))

    def _expire(self, now: float) -> deque[float]:
        sent, horizon = self._sent, now - MINUTE
        while sent and sent[0] <= horizon:
            sent.popleft()
        return sent

    def _in_last_second(self, now: float) -> int:
        """Sends in ``(now - 1, now]`` (the times are in order: a binary search)."""
        sent = self._sent
        return len(sent) - bisect_right(sent, now - SECOND)
