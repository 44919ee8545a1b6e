"""IBFeed: the synchronous Feed over IB real-time bars (engine-thread facade).

Runs its own IB API connection (client id ``IBConfig.effective_feed_client_id``) on its own loop
thread ``ml4t-ib-feed``, so bars never queue behind order traffic and the feed reconnects on its
own. 5-second real-time bars are aggregated to ``bar_size`` and each bar is labelled by its START
time, as ml4t.backtest labels recorded bars; one ``BarClosed`` per label carries every symbol whose
bar closed then, in the backtest's shape (``price, open, high, low, close, volume, signals``).
``warmup_bars`` historical bars are delivered first, with no gap and no duplicate at the seam.
Bars from history (warm-up, backfill after an outage) carry ``catch_up=True``; live bars False.
With ``end`` (tz-aware), ``FeedEnded`` follows the bar that closes at or after it (a session's
close), or comes when the gateway's clock passes it with no such bar (a holiday, an early close;
seen at the next probe, i.e. within ``min(heartbeat_seconds, silence_after)`` of quiet), so
``LiveEngine.run()`` returns.

Feed health (the rule is shared with Alpaca: :mod:`ml4t_live.feeds.health`; the IB side is
:mod:`~ml4t_live.venues.ib.feed_health`):

* a quiet market (no newer bar) is checked again after twice the last wait, counted from the
  check, at most every ``max_check_interval`` seconds (default 15 min);
* between bars, a ``FeedHeartbeat`` at most every ``heartbeat_seconds`` (0: none) while the
  gateway answers, so bars further apart than the engine's ``heartbeat_timeout`` never stall it;
* no real-time bar of any symbol for ``silence_after`` seconds (default: bar size + 30 s) while the
  gateway answers and has newer historical bars: the stream is silent, so it is resubscribed and
  the missed bars backfilled (catch-up); a quiet market is not (the venue has no newer bar),
  unless the gateway's clock says ``session_calendar`` (an exchange_calendars name; the default
  ``"auto"`` is XNYS for ``IBConfig.currency`` USD with ``IBConfig.exchange`` SMART or a US
  exchange, see ``US_STOCK_EXCHANGES``, none otherwise; None: never) is in its
  regular session: a venue that sends no bar and has none newer then is down (resubscribed; the
  outage bound below ends the run if no live bar comes), never "quiet" for ever;
* a gateway that does not answer ``reqCurrentTime`` within ``probe_timeout`` (default
  ``request_timeout``) is taken as frozen: the socket is dropped and the session reconnects;
* a link down for ``outage_timeout`` seconds (default 300) ends the run: ``BackgroundTaskFailed``,
  which the engine turns into ``FeedStalled`` (exit 3). A frozen gateway therefore ends the run
  within ``min(heartbeat_seconds, silence_after) + probe_timeout + outage_timeout`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import janus
from loguru import logger

from ...bridge import LoopThread
from ...errors import ConfigError
from ...events import FeedEvent
from ...feeds.health import OUTAGE_TIMEOUT, FeedHealth, HealthBounds
from ...schedule.calendar import exchange_calendar
from .bar_parsing import bar_size_seconds
from .bar_stream import BarStream
from .config import IBConfig
from .feed_health import TASK, IBFeedWatch
from .session import IBSession

_log = logger.bind(component="ib.feed")
#: IB exchange codes of US stock venues: with ``currency`` USD, ``session_calendar="auto"`` is
#: NYSE's regular hours (XNYS) for these (SMART routes a USD stock to them); any other venue has
#: hours of its own, so "auto" sets no in-session rule there (name its calendar instead).
US_STOCK_EXCHANGES = frozenset({
    "SMART", "NYSE", "NASDAQ", "ISLAND", "ARCA", "AMEX", "BATS", "BYX", "EDGEA", "EDGX", "IEX",
    "CHX", "NYSENAT", "PSX", "BEX", "LTSE", "MEMX", "PEARL", "DRCTEDGE", "IBKRATS",
})  # fmt: skip


def auto_session_calendar(config: IBConfig) -> str | None:
    """``"XNYS"`` for USD stocks on SMART or a US exchange, else None (no in-session rule)."""
    us = config.currency.upper() == "USD" and config.exchange.upper() in US_STOCK_EXCHANGES
    return "XNYS" if us else None


class IBFeed:
    name = "ib"

    def __init__(
        self,
        config: IBConfig,
        symbols: Sequence[str],
        bar_size: str = "1 min",
        warmup_bars: int = 0,
        tz: str = "UTC",
        end: datetime | None = None,
        heartbeat_seconds: float = 30.0,
        *,
        silence_after: float | None = None,
        probe_timeout: float | None = None,
        outage_timeout: float = OUTAGE_TIMEOUT,
        max_check_interval: float | None = None,
        session_calendar: str | None = "auto",
    ) -> None:
        if not symbols:
            raise ConfigError("IBFeed needs at least one symbol")
        if warmup_bars < 0:
            raise ConfigError("IBFeed.warmup_bars must be >= 0")
        try:
            self.bar_seconds = bar_size_seconds(bar_size)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.config = config
        self.symbols = list(dict.fromkeys(symbols))
        self.warmup_bars = warmup_bars
        self.tz = tz
        if end is not None and end.tzinfo is None:
            raise ConfigError("IBFeed.end must be timezone-aware")
        self.end = end
        self.heartbeat_seconds = heartbeat_seconds
        self.bounds = HealthBounds.for_bar(
            self.bar_seconds,
            heartbeat_seconds=heartbeat_seconds,
            silence_after=silence_after,
            outage_timeout=outage_timeout,
            max_check_interval=max_check_interval,
        )
        if session_calendar == "auto":
            session_calendar = auto_session_calendar(config)
        if session_calendar is not None:
            exchange_calendar(session_calendar)  # ConfigError now for a name the library lacks
        self.session_calendar = session_calendar
        self.probe_timeout = config.request_timeout if probe_timeout is None else probe_timeout
        if self.probe_timeout <= 0:
            raise ConfigError("IBFeed.probe_timeout must be > 0 seconds")
        self._loop = LoopThread("ib", "feed")
        self._session: IBSession | None = None
        self._stream: BarStream | None = None

    def start(self) -> None:
        self._loop.start(self._setup)
        try:
            self._loop.call(self._connect(), self.config.connect_timeout * 3)
        except BaseException:
            self.close()
            raise

    async def _setup(self) -> None:
        session = IBSession(
            self.config,
            self._loop,
            client_id=self.config.effective_feed_client_id,
            role="feed",
        )
        self._session = session
        self._stream = BarStream(
            session,
            self.symbols,
            self.bar_seconds,
            self.warmup_bars,
            self.tz,
            FeedHealth(self.bounds, time.monotonic()),
            end=self.end,
        )

    async def _connect(self) -> None:
        assert self._session is not None and self._stream is not None
        await self._session.connect()
        await self._stream.subscribe()
        self._stream.health.restored(time.monotonic())
        self._loop.spawn(IBFeedWatch(self._stream, self.probe_timeout, self.session_calendar).run(), TASK)
        _log.info("IB feed subscribed: {} at {}s bars", self.symbols, self.bar_seconds)

    @property
    def health(self) -> FeedHealth | None:
        """The link's health counters (a view for tests and logs; read it after ``close()``)."""
        return None if self._stream is None else self._stream.health

    def next_event(self, timeout: float) -> FeedEvent | None:
        try:
            return self._loop.events.get(timeout=timeout)  # type: ignore[no-any-return]
        except janus.SyncQueueEmpty:
            return None

    def close(self) -> None:
        self._loop.close(self._shutdown, timeout=self.config.request_timeout)

    async def _shutdown(self) -> None:
        if self._stream is not None:
            await self._stream.close()
        if self._session is not None:
            await self._session.close()
