"""ReplayFeed: recorded bars delivered the way a live feed delivers them.

The bars are iterated by ml4t.backtest's own ``DataFeed`` (so ``data``, ``context`` and the
timestamp types are exactly the backtest's) on a worker loop thread, and travel to the engine as
:class:`~ml4t_live.events.BarClosed` events through that loop's janus queue, the same path a venue
feed takes. One event per timestamp, in timestamp order, then :class:`FeedEnded`.
"""

from __future__ import annotations

import asyncio
import queue
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from loguru import logger
from ml4t.backtest import DataFeed

from ..bridge import LoopThread
from ..errors import ConfigError
from ..events import BarClosed, FeedEnded, FeedEvent, FeedHeartbeat

_log = logger.bind(component="replay-feed")

#: Queue items buffered between the replay thread and the engine (bounds memory on long replays).
QUEUE_DEPTH = 4
#: At full speed, bars travel in batches made only when the engine has used up the previous one
#: (two thread hand-overs per batch; both threads busy at once would fight over the GIL). A batch
#: holds about this many asset-rows, so it is still in the CPU caches when the engine reads it.
BATCH_ROWS = 2048
BATCH_BARS = (16, 256)  # fewest and most bars per batch
#: A paced replay waiting longer than this for its next bar sends a heartbeat meanwhile.
HEARTBEAT_SECONDS = 10.0

Frame = pl.DataFrame | pl.LazyFrame | Any  # pandas frames are accepted too


class ReplayFeed:
    """Replay recorded bars (DataFrame, parquet or CSV in the backtest's long format).

    ``speed=None`` replays as fast as the engine consumes; ``speed=N`` paces the bars at N times
    real time (the gap between consecutive timestamps divided by N), with a ``FeedHeartbeat`` every
    ``heartbeat_seconds`` of a long wait (a night between sessions). Extra keyword arguments go
    to ``ml4t.backtest.DataFeed`` (``entity_col``, ``price_col``, ``vwap_col`` ...).
    """

    name = "replay"

    def __init__(
        self,
        prices: Frame | str | Path,
        signals_df: Frame | str | Path | None = None,
        context_df: Frame | str | Path | None = None,
        *,
        speed: float | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        **datafeed_kwargs: Any,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ConfigError(f"speed must be positive (got {speed}); omit it to replay at full speed")
        self.speed = speed
        self.heartbeat_seconds = heartbeat_seconds
        try:
            self._datafeed = DataFeed(
                prices_df=load_frame(prices, "prices"),
                signals_df=load_frame(signals_df, "signals"),
                context_df=load_frame(context_df, "context"),
                **datafeed_kwargs,
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"the recorded bars cannot be replayed: {exc}") from exc
        self.feed_spec = self._datafeed.feed_spec
        self.bars_total = self._datafeed.n_bars
        rows_per_bar = self._datafeed.prices.height / max(self.bars_total, 1)
        low, high = BATCH_BARS
        self._batch = max(low, min(high, int(BATCH_ROWS / max(rows_per_bar, 1.0))))
        self._thread: LoopThread | None = None
        self._ready: deque[FeedEvent] = deque()
        self._demand: asyncio.Event | None = None
        self._asked = False

    def start(self) -> None:
        self._thread = LoopThread("replay", "feed", queue_maxsize=QUEUE_DEPTH)
        thread = self._thread
        thread.start(lambda: self._begin(thread))
        _log.info("replaying {} bars{}", self.bars_total, _pace(self.speed))

    async def _begin(self, thread: LoopThread) -> None:
        if self.speed is None:
            self._demand = asyncio.Event()
            self._demand.set()  # the first batch is made at once
        thread.spawn(self._produce(thread), "replay")

    async def _produce(self, thread: LoopThread) -> None:
        out = thread.async_events
        bars = (step for step in self._datafeed)  # DataFeed.__iter__ restarts; this resumes
        previous = None
        while True:
            if self._demand is not None:  # full speed: wait until the engine wants more
                await self._demand.wait()
                self._demand.clear()
            batch: list[FeedEvent] = []
            for timestamp, data, context in bars:
                if self.speed is not None and previous is not None:
                    await self._pace((timestamp - previous).total_seconds() / self.speed, out)
                previous = timestamp
                batch.append(BarClosed(timestamp, data, context))
                if len(batch) >= (self._batch if self.speed is None else 1):
                    break
            else:
                batch.append(FeedEnded("end of recorded bars"))
                await out.put(batch)
                return
            await out.put(batch)

    async def _pace(self, seconds: float, out: Any) -> None:
        """Wait out the gap to the next bar (pacing, not synchronisation); a long gap (a night
        at a low speed) sends heartbeats, so the engine does not take it for a stalled feed."""
        while seconds > 0:
            step = min(seconds, self.heartbeat_seconds)
            await asyncio.sleep(step)
            seconds -= step
            if seconds > 0:
                await out.put([FeedHeartbeat(datetime.now(UTC))])

    def next_event(self, timeout: float) -> FeedEvent | None:
        if self._ready:
            return self._ready.popleft()
        thread = self._thread
        if thread is None:
            raise RuntimeError("ReplayFeed.start() has not been called")
        if self._demand is not None and not self._asked:
            thread.submit(self._demand.set)  # ask for the next batch (runs on the loop)
            self._asked = True
        try:
            item = thread.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, list):
            self._asked = False
            self._ready.extend(item)
            return self._ready.popleft()
        return item  # a BackgroundTaskFailed report from the bridge

    def close(self) -> None:
        if self._thread is not None:
            self._thread.close()


def load_frame(source: Frame | str | Path | None, what: str) -> Frame | None:
    """A DataFrame from a frame, or from a parquet / CSV path (CSV dates parsed)."""
    if source is None or not isinstance(source, (str, Path)):
        return source
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pl.read_csv(path, try_parse_dates=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc}") from exc
    raise ConfigError(f"{what} file {path} must be .parquet or .csv (got {suffix or 'no suffix'!r})")


def _pace(speed: float | None) -> str:
    return " as fast as possible" if speed is None else f" at {speed:g}x real time"
