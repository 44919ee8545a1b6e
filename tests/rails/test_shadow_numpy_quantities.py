"""A quantity the strategy computed with numpy (``np.int64`` from a pandas column, ``np.float32``)
or as a ``Fraction`` passes the shadow's rails as a Python number does (it went around them)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from ml4t.backtest import BacktestConfig, OrderStatus, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.shadow import ShadowBroker
from tests.support.market import aaa_minutes


class BuysOnce(Strategy):
    def __init__(self, quantity) -> None:
        self.quantity, self.order = quantity, None

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAA", self.quantity)


@pytest.mark.parametrize("quantity", [np.int64(5_000), np.int32(5_000), np.float32(5_000.0), Fraction(5_000)],
                         ids=lambda q: type(q).__name__)  # fmt: skip
def test_a_numpy_or_fraction_quantity_meets_the_shadow_rails(quantity):
    strategy = BuysOnce(quantity)
    shadow = ShadowBroker(BacktestConfig(initial_cash=1_000_000.0), risk={"max_order_quantity": 100})
    LiveEngine(strategy, shadow, ReplayFeed(aaa_minutes([100.0] * 3)), session_dir=False).run()
    assert strategy.order.status is OrderStatus.REJECTED and strategy.order.rejection_code == "max_order_quantity"
    assert not shadow.strategy_broker.positions
