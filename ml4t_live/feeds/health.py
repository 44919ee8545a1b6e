"""Feed health: when a venue feed's quiet is normal and when it is trouble (pure; both venues).

The IB and Alpaca feeds apply the same rule, on the feed's own monotonic clock:

* **Heartbeat.** While the link is up, a ``FeedHeartbeat`` goes to the engine whenever no event
  was put for ``heartbeat_seconds`` (IB: only after the gateway answered a probe). Bars 150 s
  apart (5-minute bars, a quiet or closed market) therefore never trip the engine's
  ``heartbeat_timeout``.
* **Silence.** No live bar from ANY subscribed symbol for ``silence_after`` seconds (default: the
  bar size plus a 30 s grace) while the link is up: the feed asks the venue whether it has bars the
  stream did not deliver (IB: historical bars newer than the last delivered label; Alpaca: the bars
  REST, only while its clock says the market is open). If it has, the stream is silent: a warning,
  then reconnect / resubscribe, and the missed bars are backfilled as catch-up bars. If not, the
  market is just quiet: the heartbeats go on and the next check comes twice the last wait after
  THIS check (``silence_after``, then 2x, 4x ... up to ``max_check_interval``, default 15 min),
  so a quiet night or weekend costs one check per ``max_check_interval`` at most (IB: unless the
  gateway's clock says the exchange is in its regular session; then the venue sends no data: the
  link counts as down, see Outage). Before the open (when the
  feed knows it from the venue's clock) the next check is at the latest ``silence_after`` past
  it, and the waits start over there: a stream silent from the open is found then, however long
  the quiet before it. One quiet symbol while others tick never triggers a check: any symbol's
  bar resets the timer, also one that arrives while a check awaits the venue.
* **Outage.** From the moment the link is down (socket closed, IB 1100, a gateway that does not
  answer a probe, a silent socket that is being replaced) a ``FeedDisconnected`` reminder goes out
  every ``heartbeat_seconds`` (so the engine's stall timer does not fire first); if the link is not
  back within ``outage_timeout`` the feed reports ``BackgroundTaskFailed``, which the engine turns
  into ``FeedStalled`` (exit 3).

:class:`FeedHealth` is the bookkeeping only (no I/O, no clock of its own); each feed's loop feeds
it ``time.monotonic()`` readings and does the talking to the venue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError

#: Added to the bar size before a quiet stream is checked against the venue.
SILENCE_GRACE = 30.0
#: A venue link that stays down this long ends the run (exit 3).
OUTAGE_TIMEOUT = 300.0
#: The longest wait between two checks of a quiet market.
MAX_CHECK_INTERVAL = 900.0


@dataclass(frozen=True, slots=True)
class HealthBounds:
    heartbeat_seconds: float
    silence_after: float
    outage_timeout: float = OUTAGE_TIMEOUT
    max_check_interval: float = MAX_CHECK_INTERVAL

    @classmethod
    def for_bar(
        cls,
        bar_seconds: float,
        *,
        heartbeat_seconds: float,
        silence_after: float | None = None,
        outage_timeout: float = OUTAGE_TIMEOUT,
        max_check_interval: float | None = None,
    ) -> HealthBounds:
        """Bounds for a feed of ``bar_seconds`` bars; ``silence_after`` defaults to bar + grace,
        ``max_check_interval`` to 15 min (or ``silence_after`` if that is longer)."""
        after = bar_seconds + SILENCE_GRACE if silence_after is None else silence_after
        if heartbeat_seconds < 0 or after <= 0 or outage_timeout <= 0:
            raise ConfigError(
                "feed health: heartbeat_seconds must be >= 0 (0: none), silence_after and "
                "outage_timeout > 0 seconds"
            )
        if max_check_interval is None:
            max_check_interval = max(MAX_CHECK_INTERVAL, after)
        elif not max_check_interval >= after:
            raise ConfigError(
                f"feed health: max_check_interval ({max_check_interval:g}s) must be at least "
                f"silence_after ({after:g}s): the checks of a quiet market only ever slow down"
            )
        return cls(heartbeat_seconds, after, outage_timeout, max_check_interval)

    @property
    def tick(self) -> float:
        """How often a feed's health loop looks at the clock (a fraction of the smallest bound)."""
        beat = self.heartbeat_seconds or math.inf
        return min(1.0, max(0.02, min(beat, self.silence_after, self.outage_timeout) / 4))

    @property
    def reminder_seconds(self) -> float:
        return self.heartbeat_seconds or self.outage_timeout / 4


class FeedHealth:
    """Timers of one feed's link: last live bar, last event put, outage start, next check."""

    def __init__(self, bounds: HealthBounds, now: float) -> None:
        self.bounds = bounds
        self.last_bar = now  # newest live bar of any symbol, or the (re)subscription
        self.last_put = now  # newest event put for the engine
        self.down_since: float | None = None
        self.down_reason = ""
        self._reminded = now
        self._check_wait = bounds.silence_after  # the wait before the next check
        self.next_check = now + bounds.silence_after  # when the venue is asked next
        self.silences = 0  # silent streams detected (for tests and logs)
        self.venue_checks = 0  # times the venue was asked whether the stream missed bars

    # ------------------------------------------------------------------ inputs
    def bar_seen(self, now: float) -> None:
        self.last_bar = now
        self._check_wait = self.bounds.silence_after
        self.next_check = now + self._check_wait

    def event_put(self, now: float) -> None:
        self.last_put = now

    def lost(self, now: float, reason: str) -> bool:
        """The link went down; True if it was up until now (the outage starts here)."""
        if self.down_since is not None:
            return False
        self.down_since, self.down_reason, self._reminded = now, reason, now
        return True

    def restored(self, now: float) -> None:
        self.down_since = None
        self.bar_seen(now)  # the quiet is measured from the resubscription
        self.last_put = now

    def quiet_confirmed(self, started: float, now: float, opens_in: float | None = None) -> None:
        """A check that began at ``started`` found no bar the stream missed and ended at ``now``:
        the next check comes twice the last wait later, at most ``max_check_interval`` after
        this one. A bar that arrived during the check keeps its own schedule (``bar_seen``).

        ``opens_in``: seconds from ``now`` to the market's open by the venue's clock (negative:
        it opened that long ago), when known. The next check then comes ``silence_after`` past
        the open at the latest (but never sooner than ``silence_after`` after this check), and
        the waits start again from ``silence_after`` there: a stream silent from the open is
        found then, however long the quiet before it."""
        if self.last_bar > started:
            return
        self._check_wait = min(self._check_wait * 2, self.bounds.max_check_interval)
        self.next_check = now + self._check_wait
        if opens_in is not None:
            at_open = now + opens_in + self.bounds.silence_after
            # (never sooner than silence_after from this check: IB-23, no identical request within 15 s)
            at_open = max(at_open, now + self.bounds.silence_after) if at_open > now else math.inf
            if at_open <= self.next_check:
                self._check_wait = self.bounds.silence_after
                self.next_check = at_open

    def silence_detected(self) -> None:
        self.silences += 1

    # ------------------------------------------------------------------ questions
    @property
    def down(self) -> bool:
        return self.down_since is not None

    def quiet_for(self, now: float) -> float:
        return now - self.last_bar

    def heartbeat_due(self, now: float) -> bool:
        beat = self.bounds.heartbeat_seconds
        return not self.down and beat > 0 and now - self.last_put >= beat

    def silence_check_due(self, now: float) -> bool:
        return not self.down and now >= self.next_check

    def reminder_due(self, now: float) -> bool:
        if self.down and now - self._reminded >= self.bounds.reminder_seconds:
            self._reminded = now
            return True
        return False

    def outage_expired(self, now: float) -> bool:
        return self.down_since is not None and now - self.down_since >= self.bounds.outage_timeout

    def outage_seconds(self, now: float) -> float:
        return 0.0 if self.down_since is None else now - self.down_since
