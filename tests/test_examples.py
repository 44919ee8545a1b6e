"""The bundled demo: its bars, its strategy in the backtest and in LiveEngine, the examples/ files."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import UTC, datetime, time
from pathlib import Path

import polars as pl
from ml4t.backtest import BacktestConfig, DataFeed, Engine

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
from ml4t_live.examples import DemoMomentum, demo_bars_path

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fills(fills) -> list[tuple]:
    return [(f.asset, f.side, f.quantity, f.price, f.timestamp, f.commission) for f in fills]


def _backtest(strategy):
    feed = DataFeed(prices_df=pl.read_parquet(demo_bars_path()))
    return Engine(feed, strategy, BacktestConfig(initial_cash=100_000)).run()


def test_demo_bars_are_two_regular_sessions_of_three_tickers():
    path = demo_bars_path()
    assert path.stat().st_size < 300_000
    bars = pl.read_parquet(path)
    assert bars.columns == ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    assert bars.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert sorted(bars["symbol"].unique()) == ["AAPL", "MSFT", "SPY"]
    stamps = bars["timestamp"].unique().sort().to_list()
    assert len(stamps) == 2 * 390 and bars.height == 3 * 780
    assert {t.date() for t in stamps} == {datetime(2024, 3, 4).date(), datetime(2024, 3, 5).date()}
    # bars labelled by their start: 09:30 .. 15:59 New York (EST) = 14:30 .. 20:59 UTC
    assert min(t.time() for t in stamps) == time(14, 30) and max(t.time() for t in stamps) == time(20, 59)
    assert stamps[0].tzinfo == UTC or stamps[0].utcoffset().total_seconds() == 0
    consistent = bars.select(
        ok=(pl.col("low") <= pl.min_horizontal("open", "close"))
        & (pl.col("high") >= pl.max_horizontal("open", "close"))
        & (pl.col("volume") > 0)
    )
    assert consistent["ok"].all()


def test_demo_bars_regenerate_identically_from_the_seeded_script():
    script = _load(ROOT / "scripts" / "make_demo_data.py", "make_demo_data")
    assert script.make_bars().equals(pl.read_parquet(demo_bars_path()))


def test_demo_momentum_trades_the_demo_data_in_the_backtest():
    result = _backtest(DemoMomentum())
    metrics = result.metrics
    assert metrics["num_fills"] >= 50
    assert {f.asset for f in result.fills} == {"AAPL", "MSFT", "SPY"}
    assert {f.side.value for f in result.fills} == {"buy", "sell"}
    assert metrics["num_rejected_orders"] == 0


def test_examples_file_mirrors_the_bundled_strategy():
    mirror = _load(ROOT / "examples" / "demo_strategy.py", "demo_strategy_example")
    assert _fills(_backtest(mirror.DemoMomentum(fast=5, slow=20)).fills) == _fills(
        _backtest(DemoMomentum(fast=5, slow=20)).fills
    )


def test_live_engine_shadow_replay_of_the_demo_fills_like_the_backtest():
    expected = _backtest(DemoMomentum())
    broker = ShadowBroker(BacktestConfig(initial_cash=100_000))
    result = LiveEngine(DemoMomentum(), broker, ReplayFeed(demo_bars_path()), session_dir=False).run()
    assert _fills(result.fills) == _fills(expected.fills)
    assert result.metrics["final_value"] == expected.metrics["final_value"]


def test_run_shadow_quick_start_script(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "run_shadow.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = _backtest(DemoMomentum()).metrics
    assert f"780 bars, {expected['num_fills']} fills, final equity {expected['final_value']:,.2f}" in done.stdout
    (session,) = (tmp_path / "sessions").iterdir()
    assert (session / "fills.parquet").is_file()


def test_readme_quick_start_runs_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "asyncio" not in block and len(block.strip().splitlines()) <= 10
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True,
                          text=True, timeout=90)  # fmt: skip
    assert done.returncode == 0, done.stderr
    final_value, fills, session = done.stdout.split()
    expected = _backtest(DemoMomentum()).metrics
    assert float(final_value) == expected["final_value"] and int(fills) == expected["num_fills"]
    assert (tmp_path / session / "summary.json").is_file()
