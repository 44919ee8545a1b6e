"""After a shadow warm restart the summary counts this run's own orders and refusals, as it counts
its own fills and rejections (the replayed ones are in the earlier run's files)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ml4t.backtest import BacktestConfig, Strategy

from ml4t_live import LiveEngine, ShadowBroker
from ml4t_live.errors import StrategyError
from tests.support.fakes import ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


class BuysEachBar(Strategy):
    def __init__(self, fail_at: int = 0) -> None:
        self.n, self.fail_at = 0, fail_at

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == self.fail_at:
            raise RuntimeError("crash")
        broker.submit_order("AAA", 10)


def bars(n: int, start: int = 0) -> list:
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(start, n)]


def shadow(state_dir) -> ShadowBroker:
    return ShadowBroker(BacktestConfig(initial_cash=100_000.0, calendar=None), risk={"max_position_notional": 5_000},
                        state_dir=state_dir)  # fmt: skip


def test_the_summary_after_a_warm_restart_counts_this_runs_orders_and_refusals(tmp_path):
    with pytest.raises(StrategyError):
        LiveEngine(BuysEachBar(fail_at=12), shadow(tmp_path), ListFeed(bars(20)), session_dir=False,
                   strategy_id="rc").run()  # fmt: skip
    again = LiveEngine(BuysEachBar(), shadow(tmp_path), ListFeed(bars(20, start=11)), session_dir=False,
                       strategy_id="rc").run()  # fmt: skip
    m = again.metrics
    # 5 buys filled before the crash (the position's cap): every order of this run is refused
    assert (m["num_fills"], m["num_rejected_orders"]) == (0, m["bars"])
    assert m["num_orders"] == m["bars"] and m["num_risk_refusals"] == m["bars"]
    assert m["risk_refusals"] == {"max_position_notional": m["bars"]}
