"""A replay's bars built from rows read a chunk at a time, equal to what the backtest's DataFeed builds.

``ml4t.backtest.DataFeed`` builds each bar from a polars slice of its prices: a slice, a schema
look-up and a row iterator per bar cost about 20 µs whatever the bar holds - half of a 1-asset
replay's time (py-spy, docs/performance.md). :class:`PriceBars` reads the same sorted prices a
chunk of rows at a time (``CHUNK_ROWS``: memory stays bounded on a long replay), a column at a
time, and builds the same bar from the same values: the same ``_AssetsData`` payload (the broker reads its
price views), the same keys, the same fallbacks (a missing open/high/low is the close, a missing
volume 0.0, mid from bid and ask), the DataFeed's own timestamp objects and column positions.
Only for prices without signals or context (``price_bars`` returns None otherwise: the replay
then iterates the DataFeed itself). tests/feeds/test_price_bars.py compares the two bar by bar.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

import polars as pl
from ml4t.backtest import DataFeed
from ml4t.backtest._temporal import timestamp_values
from ml4t.backtest.datafeed import _AssetsData

#: Rows converted to Python at a time (bounded memory; large enough to amortise the polars calls).
CHUNK_ROWS = 4096

_OPTIONAL = (  # (bar key, _AssetsData view, DataFeed column-position attribute)
    ("vwap", "_vwaps", "_price_vwap_idx"), ("bid", "_bids", "_price_bid_idx"),
    ("ask", "_asks", "_price_ask_idx"), ("mid", "_mids", "_price_mid_idx"),
    ("bid_size", "_bid_sizes", "_price_bid_size_idx"), ("ask_size", "_ask_sizes", "_price_ask_size_idx"),
)  # fmt: skip


class ReplayDataFeed(DataFeed):
    """``ml4t.backtest.DataFeed`` with its timestamp index built by polars: the DataFeed walks
    every row in Python to find where each timestamp's rows start (a fifth of a 100-asset
    replay's time); run-length encoding the sorted column gives the same ``{timestamp:
    (offset, length)}`` (the same timestamp objects: ``timestamp_values``) at a fraction."""

    def _index_by_timestamp(self, df: pl.DataFrame) -> tuple[pl.DataFrame, dict[Any, tuple[int, int]]]:
        if self._timestamp_col not in df.columns:
            return super()._index_by_timestamp(df)  # its own error
        if not df[self._timestamp_col].is_sorted():
            df = df.sort(self._timestamp_col, maintain_order=True)
        runs = df.get_column(self._timestamp_col).rle()
        lengths = runs.struct.field("len").to_list()
        stamps = timestamp_values(runs.struct.field("value"))
        offsets = [0, *accumulate(lengths)][:-1]
        return df, dict(zip(stamps, zip(offsets, lengths, strict=True), strict=True))


def price_bars(feed: DataFeed, chunk_rows: int = CHUNK_ROWS) -> PriceBars | None:
    """Bars for ``feed`` built a chunk at a time, or None when ``feed`` carries signals or
    context (or is not the DataFeed layout this module knows)."""
    if feed.signals is not None or feed.context is not None:
        return None
    needed = ("_timestamps", "_price_ranges_by_ts", "_price_entity_idx", "_price_close_idx",
              "_price_price_idx", "_price_open_idx", "_price_high_idx", "_price_low_idx",
              "_price_volume_idx", *(attr for _, _, attr in _OPTIONAL))  # fmt: skip
    if not all(hasattr(feed, name) for name in needed):
        return None
    return PriceBars(feed, chunk_rows)


class PriceBars:
    """Iterator of ``(timestamp, data, context)`` exactly as iterating ``feed`` yields them."""

    def __init__(self, feed: DataFeed, chunk_rows: int = CHUNK_ROWS) -> None:
        self._chunk_rows = max(1, chunk_rows)
        self._prices = feed.prices
        self._stamps = feed._timestamps
        self._ranges = feed._price_ranges_by_ts
        self._next = 0
        self._rows: list[tuple[Any, ...]] = []
        self._first = 0  # the prices row that self._rows[0] is
        # the columns a bar reads (never the timestamp: the DataFeed's own objects are used), read
        # a column at a time (polars' row-wise conversion costs seven times more per row)
        positions = [feed._price_entity_idx, feed._price_close_idx, feed._price_price_idx, feed._price_open_idx,
                     feed._price_high_idx, feed._price_low_idx, feed._price_volume_idx]  # fmt: skip
        optional = [(key, view, getattr(feed, attr)) for key, view, attr in _OPTIONAL if getattr(feed, attr) >= 0]
        self._columns = sorted({p for p in positions if p >= 0} | {p for _, _, p in optional})
        at = {column: n for n, column in enumerate(self._columns)}
        at[-1] = -1
        self._entity, self._close, self._price, self._open, self._high, self._low, self._volume = (
            at[p] for p in positions
        )
        self._optional = [(key, view, at[p]) for key, view, p in optional]
        self._has_bid_ask = feed._price_bid_idx >= 0 and feed._price_ask_idx >= 0

    def __iter__(self) -> PriceBars:
        return self

    def __next__(self) -> tuple[Any, _AssetsData, dict[str, Any]]:
        if self._next >= len(self._stamps):
            raise StopIteration
        timestamp = self._stamps[self._next]
        self._next += 1
        data = _AssetsData()
        bounds = self._ranges.get(timestamp)
        if bounds is not None:
            for row in self._rows_at(*bounds):
                self._add(data, row)
        return timestamp, data, {}

    def _rows_at(self, offset: int, length: int) -> list[tuple[Any, ...]]:
        start = offset - self._first
        if start < 0 or start + length > len(self._rows):
            chunk = self._prices.slice(offset, max(length, self._chunk_rows))
            self._rows = list(zip(*(chunk.to_series(c).to_list() for c in self._columns), strict=True))
            self._first, start = offset, 0
        return self._rows[start : start + length]

    def _add(self, data: _AssetsData, row: tuple[Any, ...]) -> None:
        asset = row[self._entity]
        close = row[self._close] if self._close >= 0 else None
        price = row[self._price] if self._price >= 0 else close
        open_ = row[self._open] if self._open >= 0 else None
        high = row[self._high] if self._high >= 0 else None
        low = row[self._low] if self._low >= 0 else None
        volume = row[self._volume] if self._volume >= 0 else None
        open_ = close if open_ is None else open_
        high = close if high is None else high
        low = close if low is None else low
        volume = 0.0 if volume is None else volume
        price = close if price is None else price
        signals: dict[str, Any] = {}
        bar = {"price": price, "open": open_, "high": high, "low": low, "close": close,
               "volume": volume, "signals": signals}  # fmt: skip
        data[asset] = bar
        if price is not None:
            data._prices[asset] = price
        data._opens[asset] = open_
        data._highs[asset] = high
        data._lows[asset] = low
        data._closes[asset] = close
        data._volumes[asset] = volume
        if self._optional:
            self._add_optional(data, asset, bar, row)
        data._signals[asset] = signals

    def _add_optional(self, data: _AssetsData, asset: str, bar: dict[str, Any], row: tuple[Any, ...]) -> None:
        values = {key: row[index] for key, _, index in self._optional}
        if values.get("mid") is None and self._has_bid_ask:
            bid, ask = values.get("bid"), values.get("ask")
            if bid is not None and ask is not None:
                values["mid"] = (bid + ask) / 2.0
        for key, view, _ in _OPTIONAL:  # the DataFeed's key order
            value = values.get(key)
            if value is not None:
                bar[key] = value
                getattr(data, view)[asset] = value
