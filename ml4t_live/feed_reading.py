"""How the engine reads its feed: bars until the feed ends, the run is stopped or the feed stalls
(:func:`read_bars`), and a live bar that waited too long for the strategy becomes a catch-up bar
(:func:`late_as_catch_up`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import Any

from loguru import logger

from .errors import FeedStalled
from .events import (
    BackgroundTaskFailed,
    BarClosed,
    FeedDisconnected,
    FeedEnded,
    FeedHeartbeat,
    FeedReconnected,
)

_log = logger.bind(component="engine")

#: Longest single wait on the feed queue, so ``stop()`` is noticed promptly.
_WAIT_SLICE = 0.25
#: Seconds beyond its interval a live bar may wait for the strategy before it counts as late.
STALE_GRACE = 5.0


def late_as_catch_up(feed: Any, bar: BarClosed) -> BarClosed:
    """A live bar that waited in the queue longer than its interval plus ``STALE_GRACE``
    (the strategy fell behind the venue) is a catch-up bar: seen, not traded on."""
    interval = getattr(feed, "bar_seconds", None)
    if bar.catch_up or bar.received_at is None or not interval:
        return bar
    waited = time.monotonic() - bar.received_at
    if waited <= interval + STALE_GRACE:
        return bar
    _log.warning("bar {} waited {:.1f}s for the strategy (bars are {:g}s): it is behind the "
                 "venue; a catch-up bar, its orders do not leave", bar.timestamp, waited, interval)  # fmt: skip
    return replace(bar, catch_up=True)


def read_bars(
    feed: Any, heartbeat_timeout: float, stop: threading.Event, idle: Callable[[], Any]
) -> Generator[BarClosed, None, str | None]:
    """Yield bars from the feed until it ends (the generator returns the feed's reason), the
    run is stopped (``stop`` set: None), or the feed stalls (FeedStalled raises); ``idle()``
    runs while no bar comes (each empty wait, each heartbeat)."""
    last_alive = time.monotonic()
    while not stop.is_set():
        event = feed.next_event(min(_WAIT_SLICE, heartbeat_timeout))
        now = time.monotonic()
        if event is None:
            idle()
            if now - last_alive > heartbeat_timeout:
                raise FeedStalled(
                    f"feed {getattr(feed, 'name', '?')!r} delivered no bar and no "
                    f"heartbeat for {heartbeat_timeout:g}s; check the connection or "
                    "raise heartbeat_timeout"
                )
            continue
        last_alive = now
        match event:
            case BarClosed():
                yield event
            case FeedEnded(reason=reason):
                return reason
            case FeedHeartbeat():
                idle()
            case FeedDisconnected(venue=venue, reason=reason):
                _log.warning("feed {} disconnected: {}; waiting for it to reconnect", venue, reason)
            case FeedReconnected(venue=venue, missed_bars=missed):
                _log.info("feed {} reconnected ({} missed bars backfilled)", venue, missed)
            case BackgroundTaskFailed(thread=thread, task=task, error=error):
                raise FeedStalled(f"feed task {task} on {thread} failed: {error}")
            case _:
                _log.warning("ignoring unexpected feed event {!r}", event)
