"""The order-rate limit: at most N orders in any 60 s, and ceil(N / 6) in any 1 s.

One list of send times (POSIX seconds), oldest first. A window is half-open,
``(now - width, now]``: an order sent exactly ``width`` seconds ago no longer counts. The list
holds at most the minute's cap plus a few hundred expired times (``admit`` expires the window
only when the list holds as many sends as the smaller cap, below which nothing can refuse);
each time is appended once and dropped in a batch (a binary search, one slice deletion), so a
check is O(1) amortised. The burst cap needs no second record: the sends of the last second
are counted by a binary search. Only orders that leave are
recorded (a refused order uses no budget). Send times are kept in order: a clock that steps back
(NTP, a bar whose clock starts before the previous bar's last order) records the latest time
seen instead, so an order counts a little longer, never shorter: the limit errs on the safe side.
A venue run journals each send's recorded time (``stamp``) with its command, and a restart
``restore``s the window from the journal: the sends of the last minute before it still count.
"""

from __future__ import annotations

from bisect import bisect_right

MINUTE, SECOND = 60.0, 1.0
#: the most sends ``admit`` keeps without expiring the window (bounds the list's extra length)
_LAZY = 256


class OrderRate:
    def __init__(self, per_minute: int | None, per_second: int | None) -> None:
        self.per_minute = per_minute
        #: the burst cap (no cap: the minute's, which the minute window enforces anyway)
        self.per_second = per_second
        burst = per_second if per_second is not None else (per_minute or 0)
        #: sends kept before ``admit`` expires the window (below both caps nothing can refuse)
        self._full = min(per_minute or 0, burst, _LAZY)
        self._sent: list[float] = []
        self._last = float("-inf")  # the latest send time recorded

    def refusal(self, now: float) -> str | None:
        """Why an order sent at ``now`` would break the limit (limit name first), else None."""
        broken = self._breaks(now, 1)
        if broken is None:
            return None
        cap, count = broken
        if cap == "burst":
            return (f"max_orders_per_minute (burst): {count} orders in the last second, "
                    f"the burst cap is ceil({self.per_minute} / 6) = {self.per_second} per second")  # fmt: skip
        wait = self._sent[0] + MINUTE - now
        return (f"max_orders_per_minute: {count} orders in the last 60 s = the cap of "
                f"{self.per_minute}; the next order may leave in {wait:.1f} s")  # fmt: skip

    def room(self, now: float, orders: int) -> str | None:
        """Why ``orders`` sent together at ``now`` (a bracket: its entry and exit legs) would not
        all fit the limit, else None. Records nothing."""
        broken = self._breaks(now, orders)
        if broken is None:
            return None
        cap, count = broken
        if cap == "burst":
            return (f"max_orders_per_minute (burst): {count} orders in the last second + the {orders} of a "
                    f"bracket > the burst cap of ceil({self.per_minute} / 6) = {self.per_second} per second")  # fmt: skip
        return (f"max_orders_per_minute: {count} orders in the last 60 s + the {orders} of a bracket "
                f"> the cap of {self.per_minute}")  # fmt: skip

    def _breaks(self, now: float, orders: int) -> tuple[str, int] | None:
        """The cap (``"burst"``, ``"minute"``) that ``orders`` more sends at ``now`` would break
        and the sends already in its window, else None (no limit, or they fit). Expires the
        window first; records nothing."""
        if self.per_minute is None:
            return None
        sent = self._expire(now)
        in_second = self._in_last_second(now)
        if self.per_second is not None and in_second + orders > self.per_second:
            return "burst", in_second
        if len(sent) + orders > self.per_minute:
            return "minute", len(sent)
        return None

    def admit(self, now: float) -> str | None:
        """``refusal(now)``, and when there is none the send is recorded: one step, once per
        order that leaves. Fewer sends kept than either cap can refuse nothing, so the window is
        expired (and the caps judged) only once the list holds ``_full`` times: most orders
        append and go. The list still holds at most the minute's cap plus ``_full``."""
        if self.per_minute is None:
            return None
        sent = self._sent
        if len(sent) >= self._full:
            too_fast = self.refusal(now)  # expires the window first
            if too_fast is not None:
                return too_fast
        last = self._last
        if now > last:
            self._last = last = now
        sent.append(last)
        return None

    def stamp(self, now: float) -> float | None:
        """The time a send at ``now`` is recorded at if it passes (None: no limit)."""
        if self.per_minute is None:
            return None
        return max(self._last, now)

    def restore(self, sends: list[float]) -> None:
        """The window a restarted run starts from: the send times its journal kept (the last
        minute's, oldest first), in place of this limit's own."""
        if self.per_minute is None or not sends:
            return
        self._sent[:] = sorted(sends)
        self._last = self._sent[-1]

    def record(self, now: float) -> None:
        if self.per_minute is None:
            return
        self._last = max(self._last, now)
        self._sent.append(self._last)

    def in_last_minute(self, now: float) -> int:
        return len(self._expire(now))

    def _expire(self, now: float) -> list[float]:
        """Drop the sends that left the minute. The window ends at ``now`` or at the latest
        recorded send, whichever is later: each recorded send was judged at its own time, and
        what that judgement expired stays expired, however the clock moves after (as when the
        window was expired at every order; a NaN clock expires nothing new)."""
        sent, last = self._sent, self._last
        gone = bisect_right(sent, max(last, now) - MINUTE)
        if gone:
            del sent[:gone]
        return sent

    def _in_last_second(self, now: float) -> int:
        """Sends in ``(now - 1, now]`` (the times are in order: a binary search)."""
        sent = self._sent
        return len(sent) - bisect_right(sent, now - SECOND)
