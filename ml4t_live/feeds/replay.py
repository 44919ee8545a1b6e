"""ReplayFeed: recorded bars delivered the way a live feed delivers them.

A worker loop thread decides when bars close and announces them through that loop's janus queue,
the same path a venue feed's events take: paced (``speed=N``), one bar at each recorded gap, with
heartbeats through long ones; at full speed every recorded bar has closed already, so one
announcement covers them all. The bar itself - ``data``, ``context`` and the timestamp, exactly as
ml4t.backtest's own ``DataFeed`` builds them - is made on the engine thread when the engine takes
it: bar dicts built on one core and read on another, and thread hand-overs in between, cost up to
a quarter of the throughput (docs/performance.md). Prices without signals or context are built by
:mod:`~ml4t_live.feeds.price_bars` from rows read a chunk at a time (equal bars, without the
DataFeed's per-bar polars calls). One :class:`~ml4t_live.events.BarClosed` per timestamp, in
timestamp order, then :class:`FeedEnded`.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from loguru import logger

from ..bridge import LoopThread
from ..errors import ConfigError
from ..events import BarClosed, FeedEnded, FeedEvent, FeedHeartbeat
from ..session import BAR_COLUMNS, OPTIONAL_BAR_COLUMNS
from .bar_checks import check_bars, source_name
from .price_bars import ReplayDataFeed, price_bars

_log = logger.bind(component="replay-feed")

#: Queue items buffered between the replay thread and the engine.
QUEUE_DEPTH = 4
#: A paced replay waiting longer than this for its next bar sends a heartbeat meanwhile.
HEARTBEAT_SECONDS = 10.0

Frame = pl.DataFrame | pl.LazyFrame | Any  # pandas frames are accepted too


class ReplayFeed:
    """Replay recorded bars (DataFrame, parquet or CSV in the backtest's long format).

    ``speed=None`` replays as fast as the engine consumes; ``speed=N`` paces the bars at N times
    real time (the gap between consecutive timestamps divided by N), with a ``FeedHeartbeat`` every
    ``heartbeat_seconds`` of a long wait (a night between sessions). Extra keyword arguments go
    to ``ml4t.backtest.DataFeed`` (``entity_col``, ``price_col``, ``vwap_col`` ...).

    The bars are checked first (:mod:`~ml4t_live.feeds.bar_checks`): a missing, NaN, zero or
    negative price, a repeated (timestamp, asset) or an empty table is a ``ConfigError`` naming
    the row, unless ``on_bad_bars="drop"`` (bad rows dropped, counted in ``bad_rows_dropped``).
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
        on_bad_bars: str = "refuse",
        **datafeed_kwargs: Any,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ConfigError(f"speed must be positive (got {speed}); omit it to replay at full speed")
        self.speed = speed
        self.heartbeat_seconds = heartbeat_seconds
        name, is_csv = source_name(prices)
        checked, self.bad_rows_dropped = check_bars(
            as_polars(load_frame(prices, "prices")), name, on_bad_bars, is_csv=is_csv, columns=datafeed_kwargs
        )
        try:
            self._datafeed = ReplayDataFeed(
                prices_df=checked,
                signals_df=load_frame(signals_df, "signals"),
                context_df=load_frame(context_df, "context"),
                **datafeed_kwargs,
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"the recorded bars cannot be replayed: {exc}") from exc
        self.feed_spec = self._datafeed.feed_spec
        self.bars_total = self._datafeed.n_bars
        stamps = self._datafeed.timestamps
        # what a shadow journal knows this replay by (a different source starts it afresh)
        self.source_id = f"{_where(prices, name)}, {self.bars_total} bars" + (
            f", {stamps[0]} .. {stamps[-1]}" if self.bars_total else "")
        self._thread: LoopThread | None = None
        self._bars: Iterator[tuple[Any, Any, Any]] | None = None  # the engine thread's DataFeed
        self._due = 0  # bars announced and not yet built
        self.unpaced = 0  # the first bars delivered without pacing (a warm restart's, already seen)

    def start(self) -> None:
        self._thread = LoopThread("replay", "feed", queue_maxsize=QUEUE_DEPTH)
        thread = self._thread
        # iterated on the engine thread only (next_event); prices alone: a chunk of rows at a time
        bars = price_bars(self._datafeed)
        self._bars = bars if bars is not None else iter(self._datafeed)
        thread.start(lambda: self._begin(thread))
        _log.info("replaying {} bars{}", self.bars_total, _pace(self.speed))

    async def _begin(self, thread: LoopThread) -> None:
        thread.spawn(self._produce(thread), "replay")

    async def _produce(self, thread: LoopThread) -> None:
        out = thread.async_events
        stamps = self._datafeed.timestamps
        if self.speed is None:  # full speed: every recorded bar has closed already
            await out.put(_Due(len(stamps)))
        else:
            for index, timestamp in enumerate(stamps):
                if index and index >= self.unpaced:
                    await self._pace((timestamp - stamps[index - 1]).total_seconds() / self.speed, out)
                await out.put(_Due(1))
        await out.put(FeedEnded("end of recorded bars"))

    async def _pace(self, seconds: float, out: Any) -> None:
        """Wait out the gap to the next bar (pacing, not synchronisation); a long gap (a night
        at a low speed) sends heartbeats, so the engine does not take it for a stalled feed."""
        while seconds > 0:
            step = min(seconds, self.heartbeat_seconds)
            await asyncio.sleep(step)
            seconds -= step
            if seconds > 0:
                await out.put(FeedHeartbeat(datetime.now(UTC)))

    def next_event(self, timeout: float) -> FeedEvent | None:
        if self._due:
            self._due -= 1
            return self._bar()
        if self._thread is None or self._bars is None:
            raise RuntimeError("ReplayFeed.start() has not been called")
        try:
            item = self._thread.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, _Due):
            self._due = item.count
            return self.next_event(timeout)
        return item  # FeedEnded, FeedHeartbeat, or a BackgroundTaskFailed report from the bridge

    def _bar(self) -> BarClosed:
        """The next bar, built here, on the engine thread."""
        timestamp, data, context = next(self._bars)  # type: ignore[arg-type]
        return BarClosed(timestamp, data, context)

    def recorded_source(self) -> tuple[pl.DataFrame, dict[Any, tuple[int, int]]] | None:
        """What a session records of these bars, by reference (:mod:`ml4t_live.session_bars`):
        the prices frame the bars are sliced from (sorted by timestamp), narrowed to the columns
        the row-by-row recorder keeps, under its names, and its rows per timestamp. None when
        the bars are not plain slices of it (signals or context, a missing column, null values):
        then each bar is recorded as it is delivered."""
        feed = self._datafeed
        spec, ranges = feed.feed_spec, getattr(feed, "_price_ranges_by_ts", None)
        if feed.signals is not None or feed.context is not None or not isinstance(ranges, dict):
            return None
        names = {"timestamp": spec.timestamp_col, "asset": spec.entity_col,
                 **{c: getattr(spec, f"{c}_col") for c in BAR_COLUMNS}}  # fmt: skip
        for column in OPTIONAL_BAR_COLUMNS:  # delivered only when declared (and present)
            declared = getattr(spec, f"{column}_col")
            if declared is not None and declared in feed.prices.columns:
                names[column] = declared
        schema = feed.prices.schema
        if not all(isinstance(c, str) and c in schema for c in names.values()) or schema[names["asset"]] != pl.String:
            return None
        frame = feed.prices.select(pl.col(source).alias(name) for name, source in names.items())
        if any(frame.null_count().row(0)[: 2 + len(BAR_COLUMNS)]):
            return None  # the backtest fills a missing open/high/low/volume: record what it delivers
        return frame, ranges

    def close(self) -> None:
        if self._thread is not None:
            self._thread.close()


def _where(source: Any, name: str) -> str:
    """A file as its absolute path, size and modification time (an edited file is another
    source); a frame by its name."""
    if not isinstance(source, (str, Path)):
        return name
    path = Path(source).resolve()
    try:
        stat = path.stat()
    except OSError:
        return str(path)
    return f"{path} ({stat.st_size} bytes, modified {stat.st_mtime_ns})"


@dataclass(frozen=True, slots=True)
class _Due:
    """``count`` more bars have closed (announced by the replay thread, built by the engine's)."""

    count: int


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


def as_polars(frame: Frame) -> pl.DataFrame:
    """A polars DataFrame from a polars, lazy or pandas frame (the checks read polars)."""
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    if isinstance(frame, pl.DataFrame):
        return frame
    from ml4t.backtest._frame_inputs import pandas_frame  # DataFeed's own conversion

    try:
        return pandas_frame(frame, label="prices")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the prices must be a polars or pandas DataFrame (or a file path): {exc}") from exc


def _pace(speed: float | None) -> str:
    return " as fast as possible" if speed is None else f" at {speed:g}x real time"
