"""The daily loss is measured from the previous day's last mark (the day's start equity), so it
works with daily bars (one mark a day: measured from that mark it was always 0) and counts an
overnight gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from ml4t.backtest import BacktestConfig, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.risk import RiskConfig, TradingState
from ml4t_live.shadow import ShadowBroker


class BuyThenTry(Strategy):
    def __init__(self) -> None:
        self.n, self.buys = 0, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
        elif self.n >= 4:
            self.buys.append(broker.submit_order("AAA", 1))


def test_a_daily_loss_trips_on_daily_bars():
    days = [datetime(2024, 1, 2, 21, tzinfo=UTC) + timedelta(days=i) for i in range(5)]
    prices = [100.0, 100.0, 90.0, 90.0, 90.0]  # 100 shares lose 1,000 from day 2's close to day 3's
    frame = pl.DataFrame([{"timestamp": t, "asset": "AAA", "open": p, "high": p, "low": p, "close": p,
                           "volume": 1e6} for t, p in zip(days, prices, strict=True)])  # fmt: skip
    strategy = BuyThenTry()
    shadow = ShadowBroker(BacktestConfig(initial_cash=100_000.0), risk={"max_daily_loss": 500})
    result = LiveEngine(strategy, shadow, ReplayFeed(frame), session_dir=False).run()
    # day 3 closes 1,000 below day 2's close: REDUCING for day 4's buy; day 4 lost nothing: day 5 trades
    assert [o.rejection_code for o in strategy.buys] == ["reducing", None]
    assert "max_daily_loss" in strategy.buys[0].rejection_reason
    assert result.metrics["risk_refusals"] == {"reducing": 1}


def test_an_overnight_gap_counts_in_the_days_loss():
    state = TradingState(RiskConfig.from_table({"max_daily_loss": 500}))
    state.observe_equity(100_000.0, 0.0, day="d1")
    assert state.observe_equity(99_400.0, 0.0, day="d2").cause == "max_daily_loss"  # the gap: 600 below d1's close
