"""The virtual clock that paces a simulated venue through recorded bar timestamps.

Threading rule: :class:`VirtualClock` is NOT thread-safe. It lives on one venue loop; every method
(``next_bar``, ``release``, ``pause``, ``resume``) is called from that loop's thread. Its waits are
``asyncio.Event`` waits with timeouts, never sleep-polling.

Two modes:

* speed mode (``speed=x``): bar ``i`` is handed out ``gap / x`` wall seconds after bar ``i-1``,
  where ``gap`` is the virtual time between them capped at ``bar_seconds`` (so an overnight or
  weekend gap costs one bar, not a night). ``bar_seconds`` defaults to the smallest positive gap in
  the data (1 minute bars -> 60 s).
* step mode (``speed=None``): the first bar is handed out at once; every later bar only after the
  venue called :meth:`release` (its client caught up with the previous bar). A release given early
  is remembered; several releases before one ``next_bar`` count once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from ..errors import ConfigError


class VirtualClock:
    """Hands out recorded bar timestamps in order, paced by speed or by the client (step mode).

    Not thread-safe: create it anywhere, then use it only from the one venue loop that awaits
    :meth:`next_bar` (``release``/``pause``/``resume`` are plain methods for that loop's thread).
    """

    def __init__(
        self,
        timestamps: Sequence[datetime],
        *,
        speed: float | None = None,
        bar_seconds: float | None = None,
    ) -> None:
        self._timestamps = list(timestamps)
        for earlier, later in zip(self._timestamps, self._timestamps[1:], strict=False):
            if not later > earlier:
                raise ConfigError(
                    f"bar timestamps must increase strictly; {later} follows {earlier}"
                )
        if speed is not None and not speed > 0:
            raise ConfigError(f"speed must be positive (or None for step mode), got {speed}")
        if bar_seconds is not None and not bar_seconds > 0:
            raise ConfigError(f"bar_seconds must be positive, got {bar_seconds}")
        self.speed = speed
        self.bar_seconds = bar_seconds if bar_seconds is not None else self._infer_bar_seconds()
        self._index = -1
        self._released = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ state
    @property
    def step_mode(self) -> bool:
        return self.speed is None

    @property
    def now(self) -> datetime | None:
        """Virtual time: the timestamp of the bar handed out last (None before the first)."""
        return self._timestamps[self._index] if self._index >= 0 else None

    @property
    def index(self) -> int:
        """Index of the bar handed out last (-1 before the first)."""
        return self._index

    @property
    def timestamps(self) -> list[datetime]:
        return list(self._timestamps)

    @property
    def done(self) -> bool:
        """True once every bar has been handed out."""
        return self._index >= len(self._timestamps) - 1

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def delay(self, index: int) -> float:
        """Wall seconds speed mode waits before handing out bar ``index`` (0 for the first)."""
        if index <= 0 or self.speed is None:
            return 0.0
        gap = (self._timestamps[index] - self._timestamps[index - 1]).total_seconds()
        return min(gap, self.bar_seconds) / self.speed

    # ------------------------------------------------------------------ control
    @property
    def awaiting_release(self) -> bool:
        """Step mode: a bar went out and the clock waits for a client to catch up."""
        return self.step_mode and self._index >= 0 and not self._released.is_set()

    def release(self) -> None:
        """Step mode: the client caught up; the next bar may be handed out."""
        self._released.set()

    def pause(self) -> None:
        """Stop handing out bars until :meth:`resume` (a speed-mode wait keeps its remainder)."""
        self._running.clear()
        self._changed.set()

    def resume(self) -> None:
        self._running.set()
        self._changed.set()

    async def next_bar(self, timeout: float | None = None) -> datetime | None:
        """Wait for the next bar and return its timestamp; None when the data is exhausted.

        Raises ``TimeoutError`` if ``timeout`` seconds pass first (the clock does not advance).
        """
        if self.done:
            return None
        async with asyncio.timeout(timeout):
            if self._index >= 0 and self.step_mode:
                await self._released.wait()
            await self._wait_speed(self.delay(self._index + 1))
            await self._running.wait()
        self._released.clear()
        self._index += 1
        return self._timestamps[self._index]

    # ------------------------------------------------------------------ internals
    async def _wait_speed(self, seconds: float) -> None:
        """Wait ``seconds`` of running (unpaused) wall time."""
        loop = asyncio.get_running_loop()
        remaining = seconds
        while remaining > 0:
            await self._running.wait()
            self._changed.clear()
            started = loop.time()
            try:
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                return
            remaining -= loop.time() - started

    def _infer_bar_seconds(self) -> float:
        gaps = [
            (later - earlier).total_seconds()
            for earlier, later in zip(self._timestamps, self._timestamps[1:], strict=False)
        ]
        positive = [g for g in gaps if g > 0]
        return min(positive) if positive else 60.0
