"""The clocks a calendar session reads: this machine's, or one that is told the time.

Threading rule: a clock is used from the engine thread (the CLI's main thread); ``wait_until``
blocks that thread, woken early by the ``stop`` event (SIGTERM / Ctrl-C handlers set it).

* :class:`SystemClock`: this machine's UTC time; waits really wait (in slices, so a stop is
  noticed within a second). Its time is compared with the venue's on the first live bar.
* :class:`ManualClock`: a clock that starts at a given moment and never waits: ``wait_until``
  moves it forward at once (tests, and rehearsals of a recorded day against a simulated venue).
  With ``follows_bars`` it also moves with the bars the session sees (a rehearsal: the venue's
  time is the recorded one, so there is no skew to check).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ..errors import ConfigError

_WAIT_SLICE = 1.0


class SessionClock(Protocol):
    #: True when the clock is the venue's recorded time (no comparison with the venue's clock)
    follows_bars: bool

    def now(self) -> datetime: ...

    def wait_until(self, when: datetime, stop: threading.Event) -> bool:
        """Block until ``when``; False when ``stop`` was set first."""
        ...

    def saw_bar(self, bar_end: datetime) -> None:
        """A bar that ended at ``bar_end`` reached the session."""
        ...


class SystemClock:
    follows_bars = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait_until(self, when: datetime, stop: threading.Event) -> bool:
        while not stop.is_set():
            left = (when - self.now()).total_seconds()
            if left <= 0:
                return True
            stop.wait(min(left, _WAIT_SLICE))
        return False

    def saw_bar(self, bar_end: datetime) -> None:
        pass


class ManualClock:
    """Starts at ``start`` (tz-aware); ``wait_until`` jumps there (and records the wait)."""

    def __init__(self, start: datetime, *, follows_bars: bool = False) -> None:
        if start.tzinfo is None:
            raise ConfigError(f"the clock's start {start} needs a time zone")
        self._now = start.astimezone(UTC)
        self.follows_bars = follows_bars
        self.waits: list[datetime] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> None:
        self._now += by

    def wait_until(self, when: datetime, stop: threading.Event) -> bool:
        if stop.is_set():
            return False
        self.waits.append(when)
        self._now = max(self._now, when.astimezone(UTC))
        return True

    def saw_bar(self, bar_end: datetime) -> None:
        if self.follows_bars:
            self._now = max(self._now, bar_end.astimezone(UTC))
