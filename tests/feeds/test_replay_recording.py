"""A replay's bars are recorded by reference to the frame they came from (ml4t_live.session_bars):
the session holds exactly the delivered bars, replays as the source did, and a killed run keeps
what it had delivered by its last count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from typer.testing import CliRunner

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
from ml4t_live.cli import app
from ml4t_live.examples import DemoMomentum, demo_bars_path
from ml4t_live.session import SessionWriter, read_session_bars
from tests.support.market import make_prices, make_signals


def _summary_value(output: str, label: str) -> str:
    line = next(line for line in output.splitlines() if line.strip().startswith(label + " "))
    return line.strip()[len(label) :].strip()


def test_a_recorded_replay_holds_the_delivered_bars_and_replays_the_same(tmp_path, monkeypatch):
    # the demo's bars name their asset column "symbol", in an order of our choosing
    source = pl.read_parquet(demo_bars_path()).sort("timestamp", "symbol", descending=[False, True])
    data = tmp_path / "bars.parquet"
    source.write_parquet(data)
    assert ReplayFeed(data).recorded_source() is not None  # this run records by reference
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    first = runner.invoke(app, ["run", "ml4t_live.examples:DemoMomentum", "--data", str(data), "--max-bars",
                                "500", "--session-dir", str(tmp_path / "runs"), "-q"])  # fmt: skip
    assert first.exit_code == 0, first.output
    (session,) = (tmp_path / "runs").iterdir()
    assert not (session / ".parts").exists()

    recorded = pl.read_parquet(session / "bars.parquet")
    delivered = source.filter(pl.col("timestamp") <= source["timestamp"].unique().sort()[499])
    assert recorded.columns == ["timestamp", "asset", "open", "high", "low", "close", "volume"]
    assert recorded.equals(delivered.rename({"symbol": "asset"}))  # same rows, order and dtypes

    again = runner.invoke(app, ["replay", str(session), "--no-session", "-q"])
    assert again.exit_code == 0, again.output
    assert "DemoMomentum: 500 bars, shadow replay mode" in again.output
    for label in ("final equity", "fills"):
        assert _summary_value(again.output, label) == _summary_value(first.output, label)


def test_a_killed_replay_keeps_the_bars_up_to_its_last_count(tmp_path):
    prices = make_prices(40, ["AAA", "BBB"])  # 80 rows
    feed = ReplayFeed(prices)
    frame, ranges = feed.recorded_source()
    writer = SessionWriter.at(tmp_path, flush_rows=10, spill_seconds=60.0)
    writer.record_bars_from(frame, ranges)
    stamps = prices["timestamp"].unique().sort().to_list()
    for stamp in stamps[:7]:  # 14 rows: counted at 10 (bar 5)
        writer.add_bar(stamp, {}, {})
    assert int((tmp_path / ".parts" / "source-bars.rows").read_text()) == 10
    bars, signals, context = read_session_bars(tmp_path)  # as a killed run's folder reads
    assert bars.equals(frame.head(10)) and signals is None and context is None

    assert writer.spill_if_due(now=1e12)  # a minute passed: the count catches up
    assert read_session_bars(tmp_path)[0].equals(frame.head(14))
    assert writer.rows_written["bars"] == 14
    writer.close()
    assert pl.read_parquet(tmp_path / "bars.parquet").equals(frame.head(14))
    assert not (tmp_path / ".parts").exists()


def test_a_replay_killed_before_its_first_count_holds_no_bars(tmp_path):
    prices = make_prices(40, ["AAA", "BBB"])
    writer = SessionWriter.at(tmp_path, flush_rows=10, spill_seconds=None)
    writer.record_bars_from(*ReplayFeed(prices).recorded_source())
    writer.add_bar(prices["timestamp"][0], {}, {})
    assert not (tmp_path / ".parts").exists()
    with pytest.raises(Exception, match="holds no recorded bars"):
        read_session_bars(tmp_path)


def test_bars_that_are_not_plain_slices_are_recorded_as_delivered(tmp_path):
    prices = make_prices(30, ["AAA", "BBB"])
    assert ReplayFeed(prices, make_signals(prices)).recorded_source() is None  # signals ride along
    holes = prices.with_columns(pl.when(pl.col("asset") == "AAA").then(None).otherwise(pl.col("open")).alias("open"))
    assert ReplayFeed(holes).recorded_source() is None  # the backtest fills the open: record that
    engine = LiveEngine(DemoMomentum(fast=2, slow=5), ShadowBroker(risk=False), ReplayFeed(holes),
                        session_dir=tmp_path / "s")  # fmt: skip
    engine.run()
    recorded = pl.read_parquet(tmp_path / "s" / "bars.parquet")
    assert recorded.filter(pl.col("asset") == "AAA")["open"].equals(
        holes.filter(pl.col("asset") == "AAA")["close"], check_names=False
    )


def test_record_bars_from_comes_before_the_first_bar(tmp_path):
    prices = make_prices(5, ["AAA"])
    writer = SessionWriter.at(tmp_path)
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    bar = {"AAA": {"price": 1.0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0, "signals": {}}}
    writer.add_bar(start, bar, {})
    writer.add_bar(start + timedelta(minutes=1), bar, {})
    with pytest.raises(RuntimeError, match="before the first bar"):
        writer.record_bars_from(*ReplayFeed(prices).recorded_source())
    writer.close()
