"""How a command-line run ends on its own: SIGTERM, a wall-clock stop time, a bar budget.

All three call ``LiveEngine.stop(reason)``: the current bar finishes, ``on_end`` runs, the session
files are written and the exit code is 0. No thread is involved: SIGTERM and the stop time
(``SIGALRM``) are signal handlers in the main thread, the bar budget is checked in the engine's
progress callback.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable
from datetime import datetime, time
from typing import Any, Self

from loguru import logger

from ml4t_live.errors import ConfigError

_log = logger.bind(component="cli")


def parse_stop_at(text: str, now: datetime | None = None) -> datetime:
    """``HH:MM[:SS]`` (today, this machine's local time) or an ISO datetime (with an offset, or
    local) -> an aware datetime that must lie in the future."""
    now = now or datetime.now().astimezone()
    try:
        if "T" in text or "-" in text:
            when = datetime.fromisoformat(text)
        else:
            when = datetime.combine(now.date(), time.fromisoformat(text))
    except ValueError as exc:
        raise ConfigError(
            f"--stop-at expects HH:MM (local time today) or an ISO datetime such as "
            f"2024-03-04T16:05:00-05:00, got {text!r}"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=now.tzinfo)
    if when <= now:
        raise ConfigError(f"--stop-at {text} is already past (now {now:%Y-%m-%d %H:%M:%S %Z})")
    return when


class StopConditions:
    """Context manager around ``engine.run()``; :meth:`wrap_progress` adds the bar budget."""

    def __init__(self, stop_at: datetime | None = None, max_bars: int | None = None) -> None:
        if max_bars is not None and max_bars < 1:
            raise ConfigError(f"--max-bars must be at least 1, got {max_bars}")
        self.stop_at = stop_at
        self.max_bars = max_bars
        self.engine: Any = None
        self._previous: dict[int, Any] = {}

    def wrap_progress(self, inner: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
        if self.max_bars is None:
            return inner
        limit = self.max_bars

        def progress(p: Any) -> None:
            if inner is not None:
                inner(p)
            if p.bars_done >= limit and self.engine is not None:
                self.engine.stop(f"bar limit reached ({limit} bars)")

        return progress

    def watch(self, engine: Any) -> StopConditions:
        self.engine = engine
        return self

    def __enter__(self) -> Self:
        if threading.current_thread() is not threading.main_thread():
            if self.stop_at is not None:
                raise ConfigError("--stop-at works only when ml4t-live runs in the main thread")
            return self
        self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_term)
        if self.stop_at is not None:
            seconds = (self.stop_at - datetime.now(self.stop_at.tzinfo)).total_seconds()
            self._previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
            _log.info("the run stops at {} (in {:,.0f} s)", self.stop_at.isoformat(), math.ceil(seconds))
        return self

    def _on_term(self, signum: int, frame: Any) -> None:
        _log.warning("SIGTERM: finishing the current bar, then stopping")
        self.engine.stop("terminated (SIGTERM)")

    def _on_alarm(self, signum: int, frame: Any) -> None:
        _log.info("stop time {} reached: finishing the current bar, then stopping", self.stop_at)
        self.engine.stop(f"stop time reached ({self.stop_at.isoformat()})")

    def __exit__(self, *exc: object) -> None:
        if signal.SIGALRM in self._previous:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
