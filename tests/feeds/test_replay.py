"""ReplayFeed: the backtest's data shapes and timestamp types, through a loop thread, in order."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import polars as pl
import pytest
from ml4t.backtest import BacktestConfig, DataFeed

from ml4t_live import ConfigError, LiveEngine, ReplayFeed, ShadowBroker
from ml4t_live.events import BarClosed, FeedEnded
from ml4t_live.session import read_session_bars
from tests.support.market import make_context, make_prices, make_signals
from tests.support.strategies import MACrossover

PRICES = make_prices(150, ["AAA", "BBB"])


def drain(feed: ReplayFeed) -> list:
    feed.start()
    try:
        events = []
        while True:
            event = feed.next_event(timeout=10)
            assert event is not None, "the replay stalled"
            events.append(event)
            if isinstance(event, FeedEnded):
                return events
    finally:
        feed.close()


def backtest_steps(prices, signals=None, context=None):
    return list(DataFeed(prices_df=prices, signals_df=signals, context_df=context))


def test_one_event_per_timestamp_with_the_backtests_data_and_context():
    signals, context = make_signals(PRICES), make_context(PRICES)
    events = drain(ReplayFeed(PRICES, signals_df=signals, context_df=context))
    assert isinstance(events[-1], FeedEnded)
    bars = events[:-1]
    expected = backtest_steps(PRICES, signals, context)
    assert [b.timestamp for b in bars] == [ts for ts, _, _ in expected]
    assert all(isinstance(b, BarClosed) for b in bars)
    for bar, (_, data, ctx) in zip(bars, expected, strict=True):
        assert bar.data == data and bar.context == ctx
    assert set(bars[5].data["AAA"]) == {"price", "open", "high", "low", "close", "volume", "signals"}
    assert "signal" in bars[5].data["AAA"]["signals"]


@pytest.mark.parametrize(
    "dtype, expected_type, tz",
    [
        (pl.Datetime("us"), datetime, None),
        (pl.Datetime("us", "America/New_York"), datetime, "America/New_York"),
        (pl.Datetime("ns"), pd.Timestamp, None),
    ],
)
def test_timestamp_types_are_the_backtests(dtype, expected_type, tz):
    prices = PRICES.with_columns(pl.col("timestamp").dt.replace_time_zone(None).cast(dtype))
    if tz:
        prices = prices.with_columns(pl.col("timestamp").dt.replace_time_zone(None).dt.replace_time_zone(tz))
    events = drain(ReplayFeed(prices))
    first = events[0].timestamp
    assert type(first) is type(backtest_steps(prices)[0][0])
    assert isinstance(first, expected_type)
    assert (first.tzinfo is None) == (tz is None)


def test_parquet_and_csv_files_replay_like_the_frame(tmp_path):
    PRICES.write_parquet(tmp_path / "bars.parquet")
    PRICES.with_columns(pl.col("timestamp").dt.replace_time_zone(None)).write_csv(tmp_path / "bars.csv")
    from_parquet = drain(ReplayFeed(tmp_path / "bars.parquet"))
    from_csv = drain(ReplayFeed(str(tmp_path / "bars.csv")))
    assert [b.timestamp for b in from_parquet[:-1]] == [ts for ts, _, _ in backtest_steps(PRICES)]
    assert len(from_csv) == len(from_parquet)
    assert from_csv[3].data["BBB"]["close"] == pytest.approx(from_parquet[3].data["BBB"]["close"])


def test_unusable_input_is_a_config_error_that_says_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        ReplayFeed(tmp_path / "missing.parquet")
    (tmp_path / "bars.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"\.parquet or \.csv"):
        ReplayFeed(tmp_path / "bars.json")
    with pytest.raises(ConfigError, match="cannot be replayed"):
        ReplayFeed(PRICES.drop("asset"))
    with pytest.raises(ConfigError, match="speed must be positive"):
        ReplayFeed(PRICES, speed=0)


def test_paced_replay_keeps_order_and_ends():
    prices = make_prices(5, ["AAA"])
    events = drain(ReplayFeed(prices, speed=6000.0))  # 1-minute bars at 6000x: 10 ms apart
    assert [type(e).__name__ for e in events] == ["BarClosed"] * 5 + ["FeedEnded"]


def test_a_recorded_session_replays_to_the_same_result(tmp_path):
    config = BacktestConfig()
    first = LiveEngine(MACrossover(), ShadowBroker(config), ReplayFeed(PRICES), session_dir=tmp_path / "s1").run()
    prices, signals, context = read_session_bars(first.session_dir)
    again = LiveEngine(
        MACrossover(), ShadowBroker(config), ReplayFeed(prices, signals_df=signals, context_df=context),
        session_dir=False,
    ).run()  # fmt: skip
    assert len(first.fills) > 0
    assert [(f.asset, f.quantity, f.price, f.timestamp) for f in again.fills] == [
        (f.asset, f.quantity, f.price, f.timestamp) for f in first.fills
    ]
    files = sorted(p.name for p in first.session_dir.iterdir())
    assert {"bars.parquet", "fills.parquet", "orders.parquet", "equity.parquet", "summary.json"} <= set(files)


def test_a_paced_replay_sends_heartbeats_through_a_long_gap_and_the_run_goes_on():
    from datetime import timedelta

    one = make_prices(1, ["AAA"])
    prices = pl.concat([one, one.with_columns(pl.col("timestamp") + timedelta(hours=1))])
    events = drain(ReplayFeed(prices, speed=3600 / 0.4, heartbeat_seconds=0.1))  # a 0.4 s gap
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "BarClosed" and kinds[-2:] == ["BarClosed", "FeedEnded"]
    assert kinds.count("FeedHeartbeat") >= 2
    result = LiveEngine(
        MACrossover(), ShadowBroker(BacktestConfig()),
        ReplayFeed(prices, speed=3600 / 0.4, heartbeat_seconds=0.1),
        heartbeat_timeout=0.25, session_dir=False,
    ).run()  # fmt: skip
    assert result.bars == 2 and result.stopped_reason == "end of recorded bars"
