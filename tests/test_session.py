"""Session files: the recorder round trip, part-file spilling, orders/fills/equity, summary JSON."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from ml4t.backtest import (
    BacktestConfig,
    DataFeed,
    Engine,
    OrderSide,
    OrderStatus,
    Strategy,
)

from ml4t_live.errors import ConfigError
from ml4t_live.session import SessionWriter, json_safe, read_session_bars


def _prices(tz: str | None, unit: str = "us", n: int = 12) -> pl.DataFrame:
    start = datetime(2024, 3, 1, 14, 30)
    rows = []
    for i in range(n):
        for k, asset in enumerate(("AAA", "BBB")):
            if asset == "BBB" and i == 3:
                continue  # a bar where one asset did not trade
            close = 100.0 + k * 10 + i * 0.5
            rows.append(
                {
                    "timestamp": start + timedelta(minutes=i),
                    "asset": asset,
                    "open": close - 0.1,
                    "high": close + 0.3,
                    "low": close - 0.4,
                    "close": close,
                    "volume": 1000.0 + i,
                }
            )
    frame = pl.DataFrame(rows).with_columns(pl.col("timestamp").cast(pl.Datetime(unit)))
    if tz is not None:
        frame = frame.with_columns(pl.col("timestamp").dt.replace_time_zone(tz))
    return frame


def _signals(prices: pl.DataFrame) -> pl.DataFrame:
    return prices.select(
        "timestamp", "asset", score=pl.col("close") / 100.0, flag=pl.col("volume") > 1005
    )


def _context(prices: pl.DataFrame) -> pl.DataFrame:
    ts = prices["timestamp"].unique().sort()
    return pl.DataFrame({"timestamp": ts, "vix": [15.0 + i for i in range(len(ts))]})


def _delivered(feed: DataFeed) -> list[tuple]:
    out = []
    for timestamp, data, context in feed:
        bars = {a: {k: v for k, v in bar.items()} for a, bar in data.items()}
        out.append((timestamp, bars, dict(context)))
    return out


@pytest.mark.parametrize(
    ("tz", "unit"),
    [("UTC", "us"), ("America/New_York", "us"), (None, "us"), ("UTC", "ns")],
)
def test_recorded_bars_replay_identically_through_datafeed(tmp_path, tz, unit):
    prices = _prices(tz, unit)
    original = _delivered(
        DataFeed(prices_df=prices, signals_df=_signals(prices), context_df=_context(prices))
    )

    writer = SessionWriter.at(tmp_path / "s", flush_rows=7)  # forces several part files
    for timestamp, data, context in original:
        writer.add_bar(timestamp, data, context)
    writer.close()

    rec_prices, rec_signals, rec_context = read_session_bars(tmp_path / "s")
    assert rec_prices.schema["timestamp"] == prices.schema["timestamp"]
    assert rec_signals is not None and rec_context is not None
    replayed = _delivered(
        DataFeed(prices_df=rec_prices, signals_df=rec_signals, context_df=rec_context)
    )
    assert len(replayed) == len(original) == 12
    for (t0, d0, c0), (t1, d1, c1) in zip(original, replayed, strict=True):
        assert t0 == t1
        assert type(t0) is type(t1)
        assert getattr(t0, "tzinfo", None) == getattr(t1, "tzinfo", None)
        assert d0 == d1
        assert c0 == c1
    if unit == "ns":
        assert type(replayed[0][0]).__name__ == "Timestamp"


def test_part_files_spill_and_an_unclosed_session_is_still_readable(tmp_path):
    prices = _prices("UTC")
    writer = SessionWriter.at(tmp_path / "s", flush_rows=5)
    delivered = _delivered(DataFeed(prices_df=prices))
    for timestamp, data, context in delivered:
        writer.add_bar(timestamp, data, context)
    parts = sorted(p.name for p in (tmp_path / "s" / ".parts").glob("bars-*.arrow"))
    assert parts == [f"bars-{i:05d}.arrow" for i in range(prices.height // 5)]
    assert writer.rows_written["bars"] == prices.height
    assert not (tmp_path / "s" / "bars.parquet").exists()

    # A process that died here leaves only part files; they are still replayable.
    spilled, signals, context = read_session_bars(tmp_path / "s")
    assert spilled.height == 5 * len(parts)
    assert signals is None and context is None

    writer.close()
    writer.close()  # idempotent
    assert not (tmp_path / "s" / ".parts").exists()
    merged, _, _ = read_session_bars(tmp_path / "s" / "bars.parquet")
    expected = prices.sort("timestamp", "asset")
    assert merged.sort("timestamp", "asset").equals(expected.select(merged.columns))
    with pytest.raises(RuntimeError, match="closed"):
        writer.add_bar(delivered[0][0], delivered[0][1], {})


class _BuyThenSellTooMuch(Strategy):
    def on_data(self, timestamp, data, context, broker):
        bar = getattr(self, "bar", 0)
        self.bar = bar + 1
        if bar == 1:
            broker.submit_order("AAA", 10)
        if bar == 4:
            broker.submit_order("AAA", 1_000_000)  # rejected at fill time: not enough cash


def test_orders_fills_equity_and_empty_tables(tmp_path):
    prices = _prices("UTC")
    engine = Engine(DataFeed(prices_df=prices), _BuyThenSellTooMuch(), BacktestConfig(calendar=None))
    result = engine.run()
    orders = list(engine.broker.orders)
    assert {o.status for o in orders} == {OrderStatus.FILLED, OrderStatus.REJECTED}

    writer = SessionWriter.create(tmp_path, "My Strategy", datetime(2024, 3, 1, 14, 30, tzinfo=UTC))
    assert writer.dir.name == "My_Strategy-20240301T143000Z"
    writer.add_orders(orders)
    writer.add_fills(result.fills)
    writer.write_equity(result.equity_curve)
    writer.close()

    fills = pl.read_parquet(writer.dir / "fills.parquet")
    assert fills.height == len(result.fills) == 1
    assert fills.row(0, named=True)["side"] == OrderSide.BUY.value
    assert fills["timestamp"].to_list() == [f.timestamp for f in result.fills]
    assert fills.schema["timestamp"] == pl.Datetime("us", "UTC")
    recorded_orders = pl.read_parquet(writer.dir / "orders.parquet")
    assert sorted(recorded_orders["status"].to_list()) == ["filled", "rejected"]
    rejected = recorded_orders.filter(pl.col("status") == "rejected").row(0, named=True)
    assert rejected["rejection_reason"]
    equity = pl.read_parquet(writer.dir / "equity.parquet")
    assert equity.rows() == [(t, float(v)) for t, v in result.equity_curve]
    # nothing recorded -> empty bars table with the long-format columns; no signals/context files
    bars = pl.read_parquet(writer.dir / "bars.parquet")
    assert bars.height == 0 and bars.columns[:3] == ["timestamp", "asset", "open"]
    assert not (writer.dir / "signals.parquet").exists()


def test_create_never_reuses_a_folder(tmp_path):
    started = datetime(2024, 3, 1, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    names = [SessionWriter.create(tmp_path, "S", started).dir.name for _ in range(3)]
    assert names == ["S-20240301T143000Z", "S-20240301T143000Z-2", "S-20240301T143000Z-3"]
    assert SessionWriter.create(tmp_path, "S", started).log_path.name == "session.log"


def test_summary_json_is_safe(tmp_path):
    writer = SessionWriter.at(tmp_path)
    writer.write_summary(
        {
            "started_at": datetime(2024, 3, 1, 14, 30, tzinfo=UTC),
            "status": OrderStatus.REJECTED,
            "bars": np.int64(5),
            "ret": np.float64(0.25),
            "nan": math.nan,
            "curve": np.array([1.0, 2.0]),
            "path": tmp_path,
            "nested": {"sides": (OrderSide.BUY, OrderSide.SELL), 3: {1.5}},
        }
    )
    loaded = json.loads((tmp_path / "summary.json").read_text())
    assert loaded == {
        "started_at": "2024-03-01T14:30:00+00:00",
        "status": "rejected",
        "bars": 5,
        "ret": 0.25,
        "nan": None,
        "curve": [1.0, 2.0],
        "path": str(tmp_path),
        "nested": {"sides": ["buy", "sell"], "3": [1.5]},
    }
    assert json_safe(timedelta(seconds=90)) == 90.0


def test_reading_a_missing_session_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_session_bars(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no recorded bars"):
        read_session_bars(tmp_path / "empty")


def test_add_equity_spills_and_merges_in_order(tmp_path):
    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    points = [(start + timedelta(minutes=i), 100_000.0 + i) for i in range(11)]
    writer = SessionWriter.at(tmp_path, flush_rows=4)
    for point in points:
        writer.add_equity([point])
    assert len(list((tmp_path / ".parts").glob("equity-*.arrow"))) == 2
    writer.close()
    equity = pl.read_parquet(tmp_path / "equity.parquet")
    assert equity.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert equity.rows() == points


def test_a_bar_without_prices_or_context_is_kept_for_the_replay(tmp_path):
    prices = _prices("UTC", n=4)
    extra = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)  # signals only, for an asset with no prices
    signals = pl.concat([
        _signals(prices),
        pl.DataFrame({"timestamp": [extra], "asset": ["ZZZ"], "score": [1.0], "flag": [True]},
                     schema_overrides={"timestamp": pl.Datetime("us", "UTC")}),
    ])  # fmt: skip
    context = _context(prices)
    original = _delivered(DataFeed(prices_df=prices, signals_df=signals, context_df=context))
    assert original[-1] == (extra, {}, {})

    writer = SessionWriter.at(tmp_path)
    for timestamp, data, context in original:
        writer.add_bar(timestamp, data, context)
    writer.close()
    rec_prices, rec_signals, rec_context = read_session_bars(tmp_path)
    replayed = _delivered(DataFeed(prices_df=rec_prices, signals_df=rec_signals, context_df=rec_context))
    assert replayed == original


def test_optional_quote_columns_round_trip_even_when_some_bars_lack_them(tmp_path):
    prices = _prices("UTC", n=6).with_columns(
        vwap=pl.when(pl.col("timestamp").dt.minute() >= 32).then(pl.col("close") - 0.05),  # null early
        bid=pl.col("close") - 0.01,
        ask=pl.col("close") + 0.01,
    )
    declared = {"vwap_col": "vwap", "bid_col": "bid", "ask_col": "ask"}
    original = _delivered(DataFeed(prices_df=prices, **declared))
    assert "vwap" not in original[0][1]["AAA"] and "vwap" in original[-1][1]["AAA"]
    assert original[0][1]["AAA"]["mid"] == pytest.approx(original[0][1]["AAA"]["close"])

    writer = SessionWriter.at(tmp_path, flush_rows=3)
    for timestamp, data, context in original:
        writer.add_bar(timestamp, data, context)
    writer.close()
    rec_prices, _, _ = read_session_bars(tmp_path)
    replayed = _delivered(DataFeed(prices_df=rec_prices, **declared, mid_col="mid"))
    assert replayed == original


def test_plain_bars_before_and_after_quoted_bars_keep_their_columns(tmp_path):
    plain = {"price": 1.0, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.0, "volume": 9.0, "signals": {}}
    quoted = {**plain, "bid": 0.9, "ask": 1.1}
    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    writer = SessionWriter.at(tmp_path, flush_rows=2)
    for i, bar in enumerate([plain, plain, plain, quoted, plain]):
        writer.add_bar(start + timedelta(minutes=i), {"AAA": bar}, {})
    writer.close()
    bars, _, _ = read_session_bars(tmp_path)
    assert bars["bid"].to_list() == [None, None, None, 0.9, None]
    assert bars["high"].to_list() == [2.0] * 5 and bars.height == 5


def test_wide_tables_spill_after_fewer_rows(tmp_path):
    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    writer = SessionWriter.at(tmp_path, flush_rows=10)  # a budget of 70 cells; a row here has 30
    writer.add_latency({"timestamp": start, **{f"c{i}": float(i) for i in range(29)}} for _ in range(7))
    assert len(list((tmp_path / ".parts").glob("latency-*.arrow"))) == 2  # after rows 3 and 6
    writer.close()
    assert pl.read_parquet(tmp_path / "latency.parquet").height == 7


def test_orders_and_fills_spill_every_flush_rows_objects(tmp_path):
    """They are buffered as references to the objects, not copied cells: no cell budget."""
    from ml4t.backtest import Fill

    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    fills = [Fill(f"o{i}", "AAA", OrderSide.BUY, 1.0, 100.0 + i, start + timedelta(minutes=i))
             for i in range(7)]  # fmt: skip
    writer = SessionWriter.at(tmp_path, flush_rows=3)
    writer.add_fills(fills)
    assert len(list((tmp_path / ".parts").glob("fills-*.arrow"))) == 2  # after fills 3 and 6
    writer.close()
    recorded = pl.read_parquet(tmp_path / "fills.parquet")
    assert recorded["order_id"].to_list() == [f"o{i}" for i in range(7)]
    assert recorded.schema["timestamp"] == pl.Datetime("us", "UTC")


def test_buffered_rows_spill_once_a_minute_so_a_slow_session_loses_little(tmp_path):
    """A live session with one fill a day never reaches ``flush_rows``: the time-based spill
    puts every buffered row on disk at least every ``spill_seconds`` (clock passed in)."""
    from time import monotonic

    from ml4t.backtest import Fill

    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    writer = SessionWriter.at(tmp_path, spill_seconds=60.0)
    writer.add_fills([Fill("o1", "AAA", OrderSide.BUY, 1.0, 100.0, start)])
    writer.add_equity([(start, 100_000.0)])
    t0 = monotonic()
    assert not writer.spill_if_due(t0 + 30)  # not yet: nothing on disk
    assert not (tmp_path / ".parts").exists()

    assert writer.spill_if_due(t0 + 61)
    parts = sorted(p.name for p in (tmp_path / ".parts").iterdir())
    assert parts == ["equity-00000.arrow", "fills-00000.arrow"]
    # what a process that died now would leave: readable part files
    assert pl.read_ipc(tmp_path / ".parts" / "fills-00000.arrow")["order_id"].to_list() == ["o1"]
    assert not writer.spill_if_due(t0 + 62)  # the clock restarted at the spill

    writer.add_fills([Fill("o2", "AAA", OrderSide.SELL, 1.0, 101.0, start + timedelta(days=1))])
    writer.close()
    assert pl.read_parquet(tmp_path / "fills.parquet")["order_id"].to_list() == ["o1", "o2"]
    assert not (tmp_path / ".parts").exists()


def test_the_time_based_spill_can_be_switched_off(tmp_path):
    from time import monotonic

    writer = SessionWriter.at(tmp_path, spill_seconds=None)
    writer.add_equity([(datetime(2024, 3, 1, tzinfo=UTC), 1.0)])
    assert not writer.spill_if_due(monotonic() + 3600)
    assert not (tmp_path / ".parts").exists()
    writer.close()


def test_part_files_are_read_back_in_numeric_order(tmp_path):
    """Part 100000 comes after part 99999 (a name sort would put it after part 10000)."""
    parts = tmp_path / ".parts"
    parts.mkdir()
    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    for minute, number in enumerate((10000, 99999, 100000)):
        pl.DataFrame({
            "timestamp": [start + timedelta(minutes=minute)], "asset": ["AAA"], "open": [1.0],
            "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0],
        }).write_ipc(parts / f"bars-{number:05d}.arrow")  # fmt: skip
    prices, _, _ = read_session_bars(tmp_path)
    assert prices["timestamp"].to_list() == [start + timedelta(minutes=m) for m in range(3)]


def test_an_idle_engine_still_spills_what_the_last_bar_left(tmp_path):
    """After the day's last bar the engine only waits (or gets heartbeats): RecordKeeper.idle
    lets the writer spill then, so a process killed overnight loses nothing older than a minute."""
    from ml4t.backtest import Fill

    from ml4t_live.results import RecordKeeper

    writer = SessionWriter.at(tmp_path, spill_seconds=None)
    records = RecordKeeper(writer, retain=None)
    writer.add_fills([Fill("o1", "AAA", OrderSide.BUY, 1.0, 100.0, datetime(2024, 3, 1, tzinfo=UTC))])
    records.idle()
    assert not (tmp_path / ".parts").exists()  # spilling switched off: nothing written
    writer.spill_seconds = 0.0
    records.idle()
    assert [p.name for p in (tmp_path / ".parts").iterdir()] == ["fills-00000.arrow"]
    writer.close()
