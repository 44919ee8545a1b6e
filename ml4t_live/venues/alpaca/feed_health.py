"""AlpacaFeedWatch: the Alpaca feed's health loop, on the data stream's loop thread.

It applies the shared rule of :mod:`ml4t_live.feeds.health` to Alpaca:

* the socket counts as up from the venue's subscription acknowledgement until alpaca-py reports
  it closed; while up, a ``FeedHeartbeat`` goes out every ``heartbeat_seconds`` without an event;
* no minute bar of any symbol for ``silence_after`` seconds while the venue's clock (read at
  start) says the market is open: the bars REST is asked for minutes newer than the newest the
  stream brought (before the first one: since the venue's minute at start). Newer minutes exist
  (or the REST cannot be read, so a silent socket cannot be ruled out): the socket is silent
  (Alpaca's AL-04: connected, pings answered, no bars), so a warning, ``FeedDisconnected``, and the
  socket is closed; alpaca-py reconnects and resubscribes and the feed backfills the missed minutes
  over REST as catch-up bars, then ``FeedReconnected``. None: the market is quiet; the heartbeats
  go on and the next check comes twice the last wait after this one (at most
  ``max_check_interval``, 15 min by default: one bars REST request per 15 min of a quiet session).
  Before the open (the clock's ``next_open``, when it said closed at start) the checks ask nothing
  and the next one is at the latest ``silence_after`` past the open, where the waits start over;
* a socket down (closed, refused, or replaced after a silence and not yet resubscribed) for longer
  than ``outage_timeout``: ``BackgroundTaskFailed`` for the engine (``FeedStalled``, exit 3), with a
  ``FeedDisconnected`` reminder every ``heartbeat_seconds`` until then.

So a socket that goes silent after a bar is replaced within ``silence_after`` (+ one tick, + the
REST call) of that bar, one silent from the open of a run started before it within
``silence_after`` (+ the same) of the open, and one that goes silent during a quiet spell (no
bars anyway) at the next check of the doubling series (``max_check_interval`` at most). A data
socket that cannot be re-established ends the run within ``silence_after + outage_timeout``
(silent first) or ``outage_timeout`` (closed) seconds.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from loguru import logger

from ...errors import VenueError
from ...events import BackgroundTaskFailed, FeedDisconnected, FeedHeartbeat
from .bars import MINUTE

if TYPE_CHECKING:
    from .feed import AlpacaFeed

_log = logger.bind(component="alpaca.feed")
TASK = "alpaca-feed-health"
VENUE = "alpaca"


class AlpacaFeedWatch:
    def __init__(self, feed: AlpacaFeed) -> None:
        self.feed = feed
        self.health = feed.health

    async def run(self) -> None:
        health = self.health
        while True:
            await asyncio.sleep(health.bounds.tick)  # pacing, not synchronisation
            now = time.monotonic()
            if health.down:
                if health.outage_expired(now):
                    await self._give_up(now)
                    return
                if health.reminder_due(now):
                    await self.feed.put_event(FeedDisconnected(VENUE, self._still_down(now)))
                continue
            if health.silence_check_due(now):
                missed = self._missed_minutes() if self.feed.market_open() else 0
                if missed != 0:
                    await self._silent(missed)
                    continue
                health.quiet_confirmed(now, time.monotonic(), self.feed.opens_in())
            if health.heartbeat_due(time.monotonic()):
                await self.feed.put_event(FeedHeartbeat(datetime.now(UTC)))

    def _missed_minutes(self) -> int | None:
        """Minutes the bars REST has and the stream never brought (None: REST unreadable)."""
        feed = self.feed
        newest = feed.grouper.newest_seen()
        since = newest + MINUTE if newest is not None else feed.started_minute
        if since is None:
            return 0
        self.health.venue_checks += 1
        try:
            return len(feed._history(since, None))  # (the feed's own REST helper)
        except VenueError as exc:
            _log.warning("the bars REST could not be read to check a quiet data socket: {}", exc)
            return None

    async def _silent(self, missed: int | None) -> None:
        quiet = self.health.quiet_for(time.monotonic())
        found = (
            "the bars REST could not be read to rule out a silent socket"
            if missed is None
            else f"the bars REST has {missed} newer minute(s)"
        )
        reason = f"no bar on the data socket for {quiet:.1f}s while the market is open and {found}"
        _log.warning("{}: replacing the socket and backfilling", reason)
        self.health.silence_detected()
        self.health.lost(time.monotonic(), reason)
        await self.feed.put_event(FeedDisconnected(VENUE, reason))
        await self.feed.session.force_reconnect()  # alpaca-py reconnects with our backoff

    def _still_down(self, now: float) -> str:
        return (
            f"{self.health.down_reason}; still down after {self.health.outage_seconds(now):.0f}s "
            f"(the run ends after {self.health.bounds.outage_timeout:g}s)"
        )

    async def _give_up(self, now: float) -> None:
        error = (
            f"Alpaca data stream: {self.health.down_reason}; not back after "
            f"{self.health.outage_seconds(now):.0f}s (bound {self.health.bounds.outage_timeout:g}s)"
            ": check the network, the key's data plan and Alpaca's status, then rerun"
        )
        _log.error(error)
        thread = self.feed.session.thread.name
        await self.feed.put_event(BackgroundTaskFailed(thread, TASK, error))
