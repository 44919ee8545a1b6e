"""Long sessions do not grow without bound: with ``retain`` set, finished orders and old fills
leave memory for the session files, and the metrics still count everything."""

from __future__ import annotations

import polars as pl
from ml4t.backtest import BacktestConfig, Strategy

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
from tests.support.market import make_prices
from tests.support.strategies import MACrossover

PRICES = make_prices(600, ["AAA", "BBB", "CCC"])


class Churn(Strategy):
    """Trades every bar and records how many orders the broker still holds in memory."""

    def __init__(self) -> None:
        self.held: list[int] = []
        self.n = 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        self.held.append(len(broker.orders) + len(broker.fills))
        for asset in data:
            broker.submit_order(asset, 1 if self.n % 2 else -1)


def test_retained_records_stay_bounded_and_the_files_hold_everything(tmp_path):
    strategy = Churn()
    result = LiveEngine(
        strategy, ShadowBroker(BacktestConfig()), ReplayFeed(PRICES), session_dir=tmp_path, retain=5
    ).run()
    assert max(strategy.held) <= 3 + 5 + 3  # this bar's new orders + retained fills + pending
    assert result.metrics["num_orders"] == 3 * 600
    assert pl.read_parquet(tmp_path / "orders.parquet").height == 3 * 600
    assert pl.read_parquet(tmp_path / "fills.parquet").height == result.metrics["num_fills"]
    assert pl.read_parquet(tmp_path / "equity.parquet").height == 600
    assert len(result.equity_curve) == 5


def test_retention_does_not_change_what_the_strategy_trades(tmp_path):
    full = LiveEngine(MACrossover(), ShadowBroker(BacktestConfig()), ReplayFeed(PRICES), session_dir=False).run()
    kept = LiveEngine(
        MACrossover(), ShadowBroker(BacktestConfig()), ReplayFeed(PRICES), session_dir=tmp_path, retain=2
    ).run()
    assert kept.metrics == full.metrics
    fills = pl.read_parquet(tmp_path / "fills.parquet")
    assert fills["price"].to_list() == [f.price for f in full.fills]


def test_a_failed_run_leaves_its_files_with_the_reason_and_the_counts(tmp_path):
    import json

    import pytest

    from ml4t_live import StrategyError

    class FailsLate(Churn):
        def on_data(self, timestamp, data, context, broker):
            super().on_data(timestamp, data, context, broker)
            if self.n == 50:
                raise KeyError("missing feature")

    with pytest.raises(StrategyError):
        LiveEngine(FailsLate(), ShadowBroker(BacktestConfig()), ReplayFeed(PRICES), session_dir=tmp_path).run()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] is True and "missing feature" in summary["error"]
    assert summary["bars"] == 49 and summary["num_orders"] == 3 * 49
    assert pl.read_parquet(tmp_path / "equity.parquet").height == 49
    assert pl.read_parquet(tmp_path / "bars.parquet").height == 3 * 49
    orders = pl.read_parquet(tmp_path / "orders.parquet")
    # the orders of bar 49 (filled at bar 50's open, before on_data failed) are in the files too
    assert orders.height == 3 * 49 and orders["status"].to_list().count("filled") == 3 * 49
