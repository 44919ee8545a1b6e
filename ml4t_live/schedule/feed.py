"""SessionFeed: any feed, held to one exchange session (warm-up before the open, end at the close).

Threading rule: a thin wrapper used on the engine thread only (``LiveEngine.run`` calls ``start``,
``next_event`` and ``close``); it creates no thread, the wrapped feed owns its own.

What it adds to the wrapped feed's events, in order::

    a bar labelled before the open, or that ended before the run began -> catch_up=True
        (warm-up: the strategy sees it, its orders never leave)
    the venue's clock (a feed that read it at start: Alpaca), else the end of the first bar the
        venue sent in real time (pre-market ones too), is compared with the session clock: more
        than max_clock_skew apart is a ConfigError (exit 2) before the strategy trades (a bar that
        only looks old may be late: not traded, and 3 in a row are the error); not in a
        rehearsal, whose clock is the recorded one
    a bar that ends after the session's end (close + close_offset) -> FeedEnded, not delivered
    the bar that ends exactly at it -> delivered, then FeedEnded
    before the open, while the venue is quiet -> FeedHeartbeat (waiting is not a stall)
    no closing bar by end + one bar + 30 s (a quiet market; real clock only) -> FeedEnded
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger

from ..errors import ConfigError
from ..events import BarClosed, FeedEnded, FeedHeartbeat
from .clock import SessionClock
from .plan import DayPlan

_log = logger.bind(component="session")
#: How long after the session's end the closing bar may still come (beyond one bar interval).
CLOSING_BAR_GRACE = timedelta(seconds=30)
#: Live bars in a row that look older than max_clock_skew before the clock counts as ahead.
CLOCK_EVIDENCE_BARS = 3


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class SessionFeed:
    """Wraps ``feed`` for the session ``plan`` describes; other attributes pass through."""

    def __init__(self, feed: Any, plan: DayPlan, clock: SessionClock) -> None:
        if plan.session is None:
            raise ConfigError("SessionFeed needs a day with a session")
        self.inner = feed
        self.plan = plan
        self.clock = clock
        self.open_at = plan.session.open
        self.end_at = plan.end_at
        self._started_at: datetime | None = None
        self._interval: timedelta | None = self._known_interval()
        self._last_label: datetime | None = None
        self._checked_clock = clock.follows_bars
        self._old_bars = 0  # live bars in a row that looked older than max_clock_skew
        self._ending: str | None = None
        self.warmup_bars_seen = 0

    def __getattr__(self, name: str) -> Any:  # name, bar_seconds, feed_spec, bars_total, health
        return getattr(self.inner, name)

    # ------------------------------------------------------------------ Feed
    def start(self) -> None:
        self._started_at = self.clock.now()
        self.inner.start()
        offset = getattr(self.inner, "venue_clock_offset", None)  # a feed that read the venue's clock
        if offset is not None and not self._checked_clock:
            self._checked_clock = True
            self._check_skew(self.clock.now() - (datetime.now(UTC) + offset), "the venue's clock at connect")

    def close(self) -> None:
        self.inner.close()

    def next_event(self, timeout: float) -> Any:
        if self._ending is not None:
            return FeedEnded(self._ending)
        now = self.clock.now()
        if not self.clock.follows_bars and now >= self.end_at + self._step() + CLOSING_BAR_GRACE:
            return self._end(f"session end {self._local(self.end_at)} passed without its closing bar")
        event = self.inner.next_event(timeout)
        if event is None:
            if not self.clock.follows_bars and now < self.open_at + self._step() + CLOSING_BAR_GRACE:
                return FeedHeartbeat(now)  # before the open (and its first bar), quiet is normal
            return None
        if isinstance(event, BarClosed):
            return self._bar(event)
        return event

    # ------------------------------------------------------------------ bars
    def _bar(self, bar: BarClosed) -> BarClosed | FeedEnded:
        label = _utc(bar.timestamp)
        self._learn_interval(label)
        bar_end = label + self._step()
        self.clock.saw_bar(bar_end)
        if bar_end > self.end_at:
            return self._end(f"session end {self._local(self.end_at)} ({self.plan.settings.calendar})")
        late = not bar.catch_up and not self._checked_clock and not self._clock_agrees(bar_end)
        history = late or label < self.open_at or (self._started_at is not None and bar_end < self._started_at)
        if history and not bar.catch_up:
            bar = replace(bar, catch_up=True)
        if bar.catch_up:
            self.warmup_bars_seen += 1
        if bar_end >= self.end_at:
            self._ending = f"session end {self._local(self.end_at)} ({self.plan.settings.calendar})"
            _log.info("bar {} closes the session at {}", bar.timestamp, self._local(self.end_at))
        return bar

    def _clock_agrees(self, bar_end: datetime) -> bool:
        """A real-time bar (a pre-market one too) arrives as it ends: its end is the venue's time.
        One that ends in this machine's future means the clock is behind: an error at once. One
        that looks old may only be late (held while the feed fetched its warm-up): it is not
        traded (catch-up), and only ``CLOCK_EVIDENCE_BARS`` such bars in a row are an error."""
        skew = self.clock.now() - bar_end
        evidence = f"a live bar that ended {bar_end.isoformat()} arrived"
        if skew < -self.plan.settings.max_clock_skew or self._old_bars + 1 >= CLOCK_EVIDENCE_BARS:
            self._check_skew(skew, evidence)
        if skew <= self.plan.settings.max_clock_skew:
            self._checked_clock = True
            _log.debug("clock check: {:+.1f}s off the venue's ({})", skew.total_seconds(), evidence)
            return True
        self._old_bars += 1
        _log.warning("{} {:.0f}s after it ended: late, or this machine's clock is ahead; not traded",
                     evidence, skew.total_seconds())  # fmt: skip
        return False

    def _check_skew(self, skew: timedelta, evidence: str) -> None:
        limit = self.plan.settings.max_clock_skew
        if abs(skew) > limit:
            raise ConfigError(
                f"this machine's clock is {skew.total_seconds():+,.0f}s off the venue's ({evidence}; "
                f"this machine says {self.clock.now().isoformat()}, allowed {limit.total_seconds():g}s): "
                "sync the clock (chrony / systemd-timesyncd), or raise max_clock_skew; against a simulated "
                "venue replaying another day, rehearse it with --as-of (its banner prints the command). "
                "Nothing was traded"
            )
        _log.debug("clock check: {:+.1f}s off the venue's ({})", skew.total_seconds(), evidence)

    def _end(self, reason: str) -> FeedEnded:
        self._ending = reason
        _log.info("{}: ending the run", reason)
        return FeedEnded(reason)

    # ------------------------------------------------------------------ bar interval
    def _known_interval(self) -> timedelta | None:
        seconds = getattr(self.inner, "bar_seconds", None)
        return timedelta(seconds=float(seconds)) if seconds else None

    def _learn_interval(self, label: datetime) -> None:
        """A feed that does not say its bar size: the smallest gap between its labels."""
        if getattr(self.inner, "bar_seconds", None) is None and self._last_label is not None:
            gap = label - self._last_label
            if gap > timedelta(0) and (self._interval is None or gap < self._interval):
                self._interval = gap
        self._last_label = label

    def _step(self) -> timedelta:
        return self._interval or timedelta(minutes=1)

    def _local(self, moment: datetime) -> str:
        assert self.plan.session is not None
        return self.plan.session.local(moment)
