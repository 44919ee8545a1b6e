"""AlpacaFeed: Alpaca minute bars as the engine's :class:`~ml4t_live.protocols.Feed`.

* Labels: Alpaca stamps a bar with its minute's START, exactly as the backtest labels recorded
  bars; the label is converted to ``tz`` (default UTC) and nothing else.
* One ``BarClosed`` per label with every symbol that has a bar then; data in the backtest's shape
  ``{"price": close, "open", "high", "low", "close", "volume", "signals": {}}``.
* Other bar sizes (``5Min``, ``1Hour`` ...) are aggregated from minutes (labels: bucket start).
* Warm-up: when the first live minute ``G`` arrives, the ``warmup_bars`` bars before it come from
  the historical bars REST (``StockHistoricalDataClient``) and are delivered first; live bars at or
  before the last historical label are dropped, so the seam has no gap and no duplicate.
* Catch-up: bars from the historical REST (warm-up, backfill after a reconnect) are delivered with
  ``catch_up=True``; a bar closed by a minute from the live stream with ``catch_up=False``.
* Stream loss: ``FeedDisconnected``; when the venue acknowledges the re-subscription, the minutes
  missed since the last delivered label are backfilled over REST, then ``FeedReconnected``, then
  live bars continue.
* Feed health (the rule is shared with IB: :mod:`ml4t_live.feeds.health`; the Alpaca side is
  :mod:`~ml4t_live.venues.alpaca.feed_health`): a ``FeedHeartbeat`` every ``heartbeat_seconds``
  without an event while the socket is connected, so bars further apart than the engine's
  ``heartbeat_timeout`` (5-minute bars, a quiet market) never stall it; no minute bar of any symbol
  for ``silence_after`` seconds (default: bar size + 30 s) while the venue's clock says the market
  is open and the bars REST has newer minutes: the socket is silent, so it is closed, alpaca-py
  reconnects and resubscribes, and the missed minutes are backfilled as catch-up bars (a quiet
  market or one quiet symbol does not trigger it; a quiet market is checked again after twice the
  last wait, counted from the check, at most every ``max_check_interval``, default 15 min, and
  at the latest ``silence_after`` past the clock's ``next_open`` when started before it); a
  socket not back within ``outage_timeout`` seconds (default 300) ends the run
  (``BackgroundTaskFailed`` -> ``FeedStalled``, exit 3).
  The clock is read once, at ``start()``: after that session's close the feed stops checking
  (one session per run, as cron runs it). alpaca-py's own ``config.data_timeout`` (close a socket
  after that long without data) still works, but knows neither bar size nor market hours: leave it
  None unless a venue needs it.
* Known limit with the simulator in step mode: the engine ends every bar with
  ``GET /v2/clock`` (the broker's ``end_of_bar``), warm-up bars included, and the simulated venue
  takes each as "caught up": ``warmup_bars`` > 0 in step mode lets the venue run that many bars
  ahead. Use speed mode, or warm-up 0, for step-mode parity runs. Real Alpaca is unaffected.
* ``end``: after the bar that closes at or after ``end``, ``FeedEnded`` (a cron session's close).
* ``start()`` ends with one ``GET /v2/clock``: harmless on Alpaca, and the simulated venue's
  step-mode signal that a client is ready for the first bar.

The REST calls for history run on the feed's loop thread (blocking it briefly on purpose: no live
bar can interleave with a backfill).
"""

from __future__ import annotations

import asyncio
import queue
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from loguru import logger

from ...errors import ConfigError
from ...events import (
    BackgroundTaskFailed,
    BarClosed,
    FeedDisconnected,
    FeedEnded,
    FeedEvent,
    FeedReconnected,
)
from ...feeds.health import OUTAGE_TIMEOUT, FeedHealth, HealthBounds
from ...logs import log_failure
from .bars import MINUTE, Aggregator, Group, MinuteGrouper, floor_label, parse_bar_size
from .config import AlpacaConfig
from .feed_health import TASK, AlpacaFeedWatch
from .parsing import bar_fields
from .rate_limit import TokenBucket
from .rest import AlpacaStockDataClient, AlpacaTradingClient, RestCaller
from .session import MarketDataSession

_log = logger.bind(component="alpaca.feed")
VENUE = "alpaca"
HEARTBEAT_SECONDS = 30.0


class AlpacaFeed:
    name = "alpaca"

    def __init__(
        self,
        config: AlpacaConfig,
        symbols: list[str],
        bar_size: str = "1Min",
        warmup_bars: int = 0,
        tz: str = "UTC",
        *,
        end: datetime | None = None,
        group_grace: float = 1.0,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        silence_after: float | None = None,
        outage_timeout: float = OUTAGE_TIMEOUT,
        max_check_interval: float | None = None,
    ) -> None:
        if not symbols:
            raise ConfigError("AlpacaFeed needs at least one symbol")
        if warmup_bars < 0:
            raise ConfigError("AlpacaFeed.warmup_bars must be >= 0")
        if group_grace <= 0:
            raise ConfigError("AlpacaFeed.group_grace must be > 0 seconds")
        try:
            self.minutes = parse_bar_size(bar_size)
            self.bar_seconds = self.minutes * 60
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.config = config
        self.symbols = [s.upper() for s in symbols]
        self.warmup_bars = warmup_bars
        self.tz = ZoneInfo(tz)
        self.group_grace = group_grace
        self.end = end  # FeedEnded after the bar that closes at or after this time
        self.grouper = MinuteGrouper(self.symbols)
        self.aggregator = Aggregator(self.minutes)
        self.rest = RestCaller(
            config, TokenBucket(config.max_requests_per_minute, config.rate_limit_burst)
        )
        self.session = MarketDataSession(
            config, self.symbols, self._on_bar, self._on_lost, self._on_resubscribed
        )
        self._data: AlpacaStockDataClient | None = None
        self._started_live = False  # the startup seam is resolved
        self._last_minute: datetime | None = None  # newest minute label delivered
        self._first_seen: dict[datetime, float] = {}
        self.delivered = 0
        self.bounds = HealthBounds.for_bar(
            self.minutes * 60,
            heartbeat_seconds=heartbeat_seconds,
            silence_after=silence_after,
            outage_timeout=outage_timeout,
            max_check_interval=max_check_interval,
        )
        self.health = FeedHealth(self.bounds, time.monotonic())
        self.started_minute: datetime | None = None  # the venue's minute when start() asked
        self._closed_until: datetime | None = (
            None  # market closed until then (from the clock)
        )
        self._closes_at: datetime | None = None
        self._clock_offset = timedelta(0)

    # ================================================================== engine thread
    def start(self) -> None:
        self._data = AlpacaStockDataClient(self.config)
        self.session.start()
        try:
            self.session.call(
                lambda: self.session.thread.spawn(self._grace_flusher(), "grace")
            )
            trading = AlpacaTradingClient(self.config)
            clock = self.rest("clock", trading.get_clock, repeatable=True)
            self._closed_until = None if clock.is_open else clock.next_open
            self._closes_at = clock.next_close
            self._clock_offset = clock.timestamp - datetime.now(
                UTC
            )  # the venue's "now" vs ours
            self.started_minute = floor_label(clock.timestamp.astimezone(UTC), 1)
            self.session.call(self._watch)
        except BaseException:
            self.close()
            raise

    @property
    def venue_clock_offset(self) -> timedelta | None:
        """The venue's clock minus this machine's, as ``GET /v2/clock`` said at ``start()``
        (None before): a calendar session checks it before the open."""
        return self._clock_offset if self.started_minute is not None else None

    def next_event(self, timeout: float) -> FeedEvent | None:
        try:
            return self.session.events.get(timeout=timeout)  # type: ignore[no-any-return]
        except queue.Empty:
            return None

    def close(self) -> None:
        self.rest.close()
        self.session.close()

    # ================================================================== loop thread
    def _watch(self) -> None:
        self.health.restored(time.monotonic())
        self.session.thread.spawn(AlpacaFeedWatch(self).run(), TASK)

    async def put_event(self, event: FeedEvent | BackgroundTaskFailed) -> None:
        """Put an event for the engine (loop thread); the health timers see it."""
        self.health.event_put(time.monotonic())
        await self.session.thread.async_events.put(event)

    async def _on_bar(self, bar: Any) -> None:
        self.health.bar_seen(time.monotonic())
        try:
            label = bar.timestamp.astimezone(UTC)
            self._first_seen.setdefault(label, time.monotonic())
            groups = self.grouper.add(bar.symbol, label, bar_fields(bar))
            await self._route(groups)
        except Exception as exc:  # noqa: BLE001  (alpaca-py would only log it and go on)
            # a warm-up that could not be fetched, or a bug: stop rather than trade on a gap
            log_failure(_log, exc, "the Alpaca feed cannot go on")
            failure = BackgroundTaskFailed(
                self.session.thread.name, "bars", f"{type(exc).__name__}: {exc}"
            )
            await self.put_event(failure)

    async def _route(self, groups: list[Group]) -> None:
        if groups and not self._started_live:
            self._started_live = True
            await self._startup_seam(groups[0].label)
        for group in groups:
            await self._deliver_minute(group)

    async def _deliver_minute(self, group: Group, catch_up: bool = False) -> None:
        """Deliver one minute (``catch_up``: it came from the historical REST)."""
        if self._last_minute is not None and group.label <= self._last_minute:
            return
        self._last_minute = group.label
        self._first_seen.pop(group.label, None)
        for bar in self.aggregator.add(group):
            await self._put(bar, catch_up)

    async def _put(self, bar: Group, catch_up: bool) -> None:
        self.delivered += 1
        label = bar.label.astimezone(self.tz)
        await self.put_event(BarClosed(label, bar.data, catch_up=catch_up, received_at=time.monotonic()))
        if (
            self.end is not None
            and bar.label + timedelta(minutes=self.minutes) >= self.end
        ):
            await self.put_event(
                FeedEnded(f"end of the requested session ({self.end.isoformat()})")
            )

    async def _startup_seam(self, first: datetime) -> None:
        """Before the first live minute: the warm-up bars, and the first bucket's earlier minutes."""
        current = floor_label(first, self.minutes)
        if self.warmup_bars == 0:
            if current == first:
                return
            history, keep_from = self._history(current, first), current
        else:
            span = timedelta(minutes=(self.warmup_bars + 1) * self.minutes)
            history = []
            # nights, weekends and holidays have no minute bars: look further back, at the end a
            # week (a long holiday weekend before a session's first bar)
            for window in (span, span * 8, span * 64, max(span * 512, timedelta(days=7))):
                history = self._history(first - window, first)
                if (
                    len({floor_label(g.label, self.minutes) for g in history})
                    > self.warmup_bars
                ):
                    break
            buckets = sorted(
                {
                    floor_label(g.label, self.minutes)
                    for g in history
                    if g.label < current
                }
            )
            keep_from = buckets[-self.warmup_bars :][0] if buckets else current
        for group in history:
            if group.label >= keep_from:
                await self._deliver_minute(group, catch_up=True)
        _log.info(
            "{} warm-up bar(s) delivered before the first live minute {}",
            self.delivered,
            first,
        )

    def _history(self, start: datetime, before: datetime | None) -> list[Group]:
        """Minute groups with ``start <= label < before`` (None: up to now) from the bars REST."""
        client = self._data
        assert client is not None
        request = StockBarsRequest(
            symbol_or_symbols=self.symbols,
            timeframe=TimeFrame.Minute,
            start=start,
            end=None if before is None else before - timedelta(seconds=1),
            feed=self.config.feed,
        )
        barset = self.rest(
            "historical bars", lambda: client.get_stock_bars(request), repeatable=True
        )
        groups: dict[datetime, Group] = {}
        for symbol, bars in barset.data.items():
            for bar in bars:
                label = bar.timestamp.astimezone(UTC)
                if start <= label and (before is None or label < before):
                    groups.setdefault(label, Group(label)).data[symbol] = bar_fields(
                        bar
                    )
        return [groups[label] for label in sorted(groups)]

    async def _on_lost(self, reason: str) -> None:
        if self.health.lost(time.monotonic(), reason):  # else already reported (silent socket)
            await self.put_event(FeedDisconnected(VENUE, reason))

    async def _on_resubscribed(self) -> None:
        """After a reconnect: deliver the minutes missed since the last one, then go on live."""
        missed = 0
        if self._last_minute is not None:
            for group in self.grouper.flush():
                await self._deliver_minute(group)
            before = self.delivered
            for group in self._history(self._last_minute + MINUTE, None):  # up to now
                await self._deliver_minute(group, catch_up=True)
            missed = self.delivered - before
            if self._last_minute is not None:
                self.grouper.mark_delivered(self._last_minute)
        self.health.restored(time.monotonic())
        await self.put_event(FeedReconnected(VENUE, missed_bars=missed))

    def market_open(self) -> bool:
        """The venue's clock (read at start, carried forward on ours) says the market is open."""
        now = datetime.now(UTC) + self._clock_offset
        if self._closed_until is not None and now < self._closed_until:
            return False
        return self._closes_at is None or now < self._closes_at

    def opens_in(self) -> float | None:
        """Seconds until the open the venue's clock named at start (negative: since it), until
        ``silence_after`` past it; None otherwise (open at start, or that open is long past)."""
        if self._closed_until is None:
            return None
        seconds = (self._closed_until - (datetime.now(UTC) + self._clock_offset)).total_seconds()
        return seconds if seconds + self.bounds.silence_after > 0 else None

    async def _grace_flusher(self) -> None:
        """Release a minute some symbols never reported (no trades) after ``group_grace`` s."""
        while True:
            await asyncio.sleep(self.group_grace / 4)
            oldest = self.grouper.oldest_open()
            if oldest is None:
                continue
            seen = self._first_seen.get(oldest)
            if seen is not None and time.monotonic() - seen >= self.group_grace:
                await self._route(self.grouper.flush(oldest))
