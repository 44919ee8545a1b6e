"""AlpacaFeed: Alpaca minute bars as the engine's :class:`~ml4t_live.protocols.Feed`.

* Labels: Alpaca stamps a bar with its minute's START, exactly as the backtest labels recorded
  bars; the label is converted to ``tz`` (default UTC) and nothing else.
* One ``BarClosed`` per label with every symbol that has a bar then; data in the backtest's shape
  ``{"price": close, "open", "high", "low", "close", "volume", "signals": {}}``.
* Other bar sizes (``5Min``, ``1Hour`` ...) are aggregated from minutes (labels: bucket start).
* Warm-up: when the first live minute ``G`` arrives, the ``warmup_bars`` bars before it come from
  the historical bars REST (``StockHistoricalDataClient``) and are delivered first; live bars at or
  before the last historical label are dropped, so the seam has no gap and no duplicate.
* Stream loss: ``FeedDisconnected``; when the venue acknowledges the re-subscription, the minutes
  missed since the last delivered label are backfilled over REST, then ``FeedReconnected``, then
  live bars continue. A silent-but-open socket is closed after ``config.data_timeout`` seconds
  without data (alpaca-py's ``data_timeout``), which leads to the same path.
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
    FeedHeartbeat,
    FeedReconnected,
)
from .bars import MINUTE, Aggregator, Group, MinuteGrouper, floor_label, parse_bar_size
from .config import AlpacaConfig
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
    ) -> None:
        if not symbols:
            raise ConfigError("AlpacaFeed needs at least one symbol")
        if warmup_bars < 0:
            raise ConfigError("AlpacaFeed.warmup_bars must be >= 0")
        if group_grace <= 0:
            raise ConfigError("AlpacaFeed.group_grace must be > 0 seconds")
        try:
            self.minutes = parse_bar_size(bar_size)
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
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        self._last_alive = time.monotonic()
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
        except BaseException:
            self.close()
            raise

    def next_event(self, timeout: float) -> FeedEvent | None:
        try:
            return self.session.events.get(timeout=timeout)  # type: ignore[no-any-return]
        except queue.Empty:
            return None

    def close(self) -> None:
        self.rest.close()
        self.session.close()

    # ================================================================== loop thread
    async def _on_bar(self, bar: Any) -> None:
        try:
            label = bar.timestamp.astimezone(UTC)
            self._first_seen.setdefault(label, time.monotonic())
            groups = self.grouper.add(bar.symbol, label, bar_fields(bar))
            await self._route(groups)
        except Exception as exc:  # noqa: BLE001  (alpaca-py would only log it and go on)
            # a warm-up that could not be fetched, or a bug: stop rather than trade on a gap
            _log.opt(exception=exc).error("the Alpaca feed cannot go on")
            failure = BackgroundTaskFailed(
                self.session.thread.name, "bars", f"{type(exc).__name__}: {exc}"
            )
            await self.session.thread.async_events.put(failure)

    async def _route(self, groups: list[Group]) -> None:
        if groups and not self._started_live:
            self._started_live = True
            await self._startup_seam(groups[0].label)
        for group in groups:
            await self._deliver_minute(group)

    async def _deliver_minute(self, group: Group) -> None:
        if self._last_minute is not None and group.label <= self._last_minute:
            return
        self._last_minute = group.label
        self._first_seen.pop(group.label, None)
        for bar in self.aggregator.add(group):
            await self._put(bar)

    async def _put(self, bar: Group) -> None:
        self.delivered += 1
        self._last_alive = time.monotonic()
        out = self.session.thread.async_events
        await out.put(BarClosed(bar.label.astimezone(self.tz), bar.data))
        if (
            self.end is not None
            and bar.label + timedelta(minutes=self.minutes) >= self.end
        ):
            await out.put(
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
            for widen in (
                1,
                8,
                64,
                512,
            ):  # nights, weekends and holidays have no minute bars
                history = self._history(first - span * widen, first)
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
                await self._deliver_minute(group)
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
        await self.session.thread.async_events.put(FeedDisconnected(VENUE, reason))

    async def _on_resubscribed(self) -> None:
        """After a reconnect: deliver the minutes missed since the last one, then go on live."""
        missed = 0
        if self._last_minute is not None:
            for group in self.grouper.flush():
                await self._deliver_minute(group)
            before = self.delivered
            for group in self._history(self._last_minute + MINUTE, None):  # up to now
                await self._deliver_minute(group)
            missed = self.delivered - before
            if self._last_minute is not None:
                self.grouper.mark_delivered(self._last_minute)
        await self.session.thread.async_events.put(
            FeedReconnected(VENUE, missed_bars=missed)
        )

    def _quiet_is_expected(self) -> bool:
        """Between bars with no data: the market is closed, or alpaca-py guards a silent socket."""
        if self.session.connections <= self.session.losses:
            return False  # not connected right now: no heartbeat
        if self.config.data_timeout is not None:
            return True
        now = datetime.now(UTC) + self._clock_offset
        closed = self._closed_until is not None and now < self._closed_until
        return closed or (self._closes_at is not None and now >= self._closes_at)

    async def _grace_flusher(self) -> None:
        """Release a minute some symbols never reported (no trades) after ``group_grace`` s, and
        send a ``FeedHeartbeat`` every ``heartbeat_seconds`` without bars while quiet is expected
        (before the open, after the close), so a cron run started early is not taken as stalled."""
        while True:
            await asyncio.sleep(self.group_grace / 4)
            if (
                time.monotonic() - self._last_alive >= self.heartbeat_seconds
                and self._quiet_is_expected()
            ):
                self._last_alive = time.monotonic()
                await self.session.thread.async_events.put(
                    FeedHeartbeat(datetime.now(UTC))
                )
            oldest = self.grouper.oldest_open()
            if oldest is None:
                continue
            seen = self._first_seen.get(oldest)
            if seen is not None and time.monotonic() - seen >= self.group_grace:
                await self._route(self.grouper.flush(oldest))
