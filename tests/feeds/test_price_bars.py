"""PriceBars builds every bar exactly as ml4t.backtest's DataFeed does: same timestamps, same
dicts in the same key order, same broker views, across chunk boundaries and data shapes."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from ml4t.backtest import DataFeed

from ml4t_live.feeds.price_bars import PriceBars, ReplayDataFeed, price_bars
from tests.support.market import make_context, make_prices, make_signals

VIEWS = ("_prices", "_opens", "_highs", "_lows", "_closes", "_volumes", "_vwaps", "_bids", "_asks",
         "_mids", "_bid_sizes", "_ask_sizes", "_signals")  # fmt: skip


def assert_same_bars(prices, chunk_rows: int = 4096, **kwargs) -> int:
    ours = price_bars(ReplayDataFeed(prices_df=prices, **kwargs), chunk_rows)  # as ReplayFeed builds them
    theirs = iter(DataFeed(prices_df=prices, **kwargs))
    assert isinstance(ours, PriceBars)
    n = 0
    for (ts, data, context), (bts, bdata, bcontext) in zip(ours, theirs, strict=True):
        assert ts == bts and type(ts) is type(bts) and getattr(ts, "tzinfo", None) == getattr(bts, "tzinfo", None)
        assert type(data) is type(bdata)
        assert [(a, list(b.items())) for a, b in data.items()] == [(a, list(b.items())) for a, b in bdata.items()]
        for view in VIEWS:
            assert getattr(data, view) == getattr(bdata, view), view
        assert data._signals[next(iter(data))] is data[next(iter(data))]["signals"] if data else True
        assert context == bcontext == {}
        n += 1
    return n


def ragged(n_bars: int, assets: list[str], seed: int = 3) -> pl.DataFrame:
    """Prices where each timestamp holds a random subset of the assets (never none)."""
    prices = make_prices(n_bars, assets, seed=seed)
    keep = np.random.default_rng(seed).random(prices.height) < 0.7
    keep[:: len(assets)] = True
    return prices.filter(pl.Series(keep))


def test_plain_and_ragged_bars_across_chunk_boundaries():
    # 7-row chunks: many chunk boundaries, some inside a timestamp
    assert assert_same_bars(make_prices(50, ["AAA", "BBB", "CCC"]), chunk_rows=7) == 50
    assert assert_same_bars(ragged(80, ["A", "B", "C", "D", "E"]), chunk_rows=7) == 80
    assert assert_same_bars(make_prices(30, ["ONE"]), chunk_rows=7) == 30
    assert assert_same_bars(ragged(80, ["A", "B", "C", "D", "E"]), chunk_rows=2) == 80  # a bar > a chunk


def test_missing_and_null_columns_fall_back_as_the_backtest_does():
    prices = make_prices(40, ["AAA", "BBB"])
    assert assert_same_bars(prices.drop("open", "high", "low", "volume")) == 40
    holes = prices.with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "volume")
    )
    assert assert_same_bars(holes) == 40


def test_quotes_vwap_and_a_derived_mid():
    prices = make_prices(40, ["AAA", "BBB"])
    every = pl.int_range(pl.len())
    quoted = prices.with_columns(
        pl.when(every % 4 == 0).then(None).otherwise(pl.col("close") * 0.999).alias("bid"),
        pl.when(every % 5 == 0).then(None).otherwise(pl.col("close") * 1.001).alias("ask"),
        pl.when(every % 6 == 0).then(None).otherwise(pl.col("close")).alias("vwap"),
        pl.lit(100.0).alias("bid_size"), pl.lit(None, dtype=pl.Float64).alias("ask_size"),
    )  # fmt: skip
    declared = {"vwap_col": "vwap", "bid_col": "bid", "ask_col": "ask", "bid_size_col": "bid_size",
                "ask_size_col": "ask_size"}  # fmt: skip
    assert assert_same_bars(quoted, **declared) == 40  # mid derived from bid and ask
    with_mid = quoted.with_columns(pl.when(every % 2 == 0).then(None).otherwise(pl.col("close")).alias("mid"))
    assert assert_same_bars(with_mid, **declared, mid_col="mid") == 40
    assert assert_same_bars(quoted) == 40  # undeclared quote columns are not delivered


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"])
def test_timestamp_units_and_zones(unit, tz):
    prices = make_prices(20, ["AAA", "BBB"])
    stamps = pl.col("timestamp").dt.replace_time_zone(None).dt.cast_time_unit(unit)
    prices = prices.with_columns(stamps.dt.replace_time_zone(tz) if tz else stamps)
    if unit == "ns":  # nanoseconds the backtest keeps (pandas.Timestamp)
        prices = prices.with_columns(pl.col("timestamp") + pl.duration(nanoseconds=123))
    assert assert_same_bars(prices) == 20


def test_other_column_names_and_a_price_column():
    prices = make_prices(30, ["AAA", "BBB"]).rename({"asset": "symbol", "close": "last"})
    assert assert_same_bars(prices, close_col="last") == 30
    priced = make_prices(30, ["AAA", "BBB"]).with_columns((pl.col("close") * 1.01).alias("price"))
    assert assert_same_bars(priced, price_col="price") == 30


def test_signals_or_context_leave_the_bars_to_the_datafeed():
    prices = make_prices(10, ["AAA"])
    assert price_bars(DataFeed(prices_df=prices, signals_df=make_signals(prices))) is None
    assert price_bars(DataFeed(prices_df=prices, context_df=make_context(prices))) is None


def test_an_unsorted_frame_is_delivered_in_timestamp_order():
    base = datetime(2024, 1, 2, 14, 30)
    prices = make_prices(30, ["AAA", "BBB"], start=base).sample(fraction=1.0, shuffle=True, seed=5)
    assert assert_same_bars(prices) == 30
    stamps = [ts for ts, _, _ in price_bars(DataFeed(prices_df=prices))]
    assert stamps == [base + timedelta(minutes=i) for i in range(30)]


@pytest.mark.parametrize("unit", ["ns", "us"])
def test_the_replays_timestamp_index_is_the_datafeeds(unit):
    prices = ragged(60, ["A", "B", "C"]).sample(fraction=1.0, shuffle=True, seed=9)  # unsorted
    prices = prices.with_columns(pl.col("timestamp").dt.cast_time_unit(unit))
    if unit == "ns":
        prices = prices.with_columns(pl.col("timestamp") + pl.duration(nanoseconds=7))
    signals, context = make_signals(prices.sort("timestamp", "asset")), make_context(prices)
    ours = ReplayDataFeed(prices_df=prices, signals_df=signals, context_df=context)
    theirs = DataFeed(prices_df=prices, signals_df=signals, context_df=context)
    for name in ("_price_ranges_by_ts", "_signal_ranges_by_ts", "_context_ranges_by_ts"):
        mine, reference = getattr(ours, name), getattr(theirs, name)
        assert list(mine.items()) == list(reference.items()), name
        assert [type(k) for k in mine] == [type(k) for k in reference]
    assert ours.prices.equals(theirs.prices) and ours.timestamps == theirs.timestamps
    assert [(ts, dict(d), c) for ts, d, c in ours] == [(ts, dict(d), c) for ts, d, c in theirs]
    empty = prices.head(0)
    assert ReplayDataFeed(prices_df=empty)._price_ranges_by_ts == DataFeed(prices_df=empty)._price_ranges_by_ts == {}
