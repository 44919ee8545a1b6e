"""IBFeed: the synchronous Feed over IB real-time bars (engine-thread facade).

Runs its own IB API connection (client id ``IBConfig.effective_feed_client_id``) on its own loop
thread ``ml4t-ib-feed``, so bars never queue behind order traffic and the feed reconnects on its
own. 5-second real-time bars are aggregated to ``bar_size`` and each bar is labelled by its START
time, as ml4t.backtest labels recorded bars; one ``BarClosed`` per label carries every symbol whose
bar closed then, in the backtest's shape (``price, open, high, low, close, volume, signals``).
``warmup_bars`` historical bars are delivered first, with no gap and no duplicate at the seam.
With ``end`` (tz-aware), ``FeedEnded`` follows the bar that closes at or after it (a session's
close), so ``LiveEngine.run()`` returns. Between bars, a ``FeedHeartbeat`` at most every
``heartbeat_seconds`` shows the stream is alive (bars longer than the engine's stall timeout).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import janus
from loguru import logger

from ...bridge import LoopThread
from ...errors import ConfigError
from ...events import FeedEvent
from .bar_stream import BarStream
from .config import IBConfig
from .parsing import bar_size_seconds
from .session import IBSession

_log = logger.bind(component="ib.feed")


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
            end=self.end,
            heartbeat_seconds=self.heartbeat_seconds,
        )

    async def _connect(self) -> None:
        assert self._session is not None and self._stream is not None
        await self._session.connect()
        await self._stream.subscribe()
        if self.heartbeat_seconds > 0:
            self._loop.spawn(self._stream.heartbeats(), "ib-feed-heartbeat")
        _log.info("IB feed subscribed: {} at {}s bars", self.symbols, self.bar_seconds)

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
