"""The rails on the Alpaca venue path, through the real alpaca-py client against the simulated
Alpaca: a change of a working order that Alpaca refused leaves the order (and what the rails
count) as it is at the venue."""

from __future__ import annotations

from datetime import timedelta

from alpaca_helpers import SESSION_OPEN, config_for
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed
from tests.support.risk_probe import probe_bars


class ShrinkThenBuy(Strategy):
    """Bar 1: a limit buy of 100 AAA, its fill split in two (50 now, 50 at the next bar).
    Bar 2: it is partly filled; the strategy shrinks it to 60, which the simulator refuses (422:
    the ``partial_fill`` fault split the fill and its remainder is already executing; Alpaca
    itself replaces a partly filled order), then buys 80 more, which fits the position limit
    only if the shrink had happened."""

    def __init__(self, sim) -> None:
        self.sim, self.n = sim, 0
        self.entry = self.more = self.changed = None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.sim.inject("partial_fill", parts=2)
            self.entry = broker.submit_order("AAA", 100, order_type=OrderType.LIMIT, limit_price=100.0)
        if self.n == 2:
            self.filled_then = self.entry.filled_quantity
            self.changed = broker.update_order(self.entry.order_id, quantity=60)
            self.quantity_then = self.entry.quantity
            self.more = broker.submit_order("AAA", 80)


def test_a_change_alpaca_refused_leaves_the_order_and_the_limits_as_at_the_venue():
    sim = SimulatedAlpaca(probe_bars(SESSION_OPEN), config=BacktestConfig(), rate_limit_per_minute=None)
    sim.start()
    try:
        cfg = config_for(sim, max_requests_per_minute=100_000, rate_limit_burst=1_000)
        strategy = ShrinkThenBuy(sim)
        broker = AlpacaBroker(cfg, strategy_id="shrink", risk={"max_position_notional": 15_000})
        feed = AlpacaFeed(cfg, ["AAA"], end=SESSION_OPEN + timedelta(minutes=4))
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False).run()
        received = {o["order"]["client_order_id"] for o in sim.orders_received()}
    finally:
        sim.close()
    assert strategy.filled_then == 50  # partly filled when the change was asked
    assert strategy.changed is False and strategy.quantity_then == 100  # refused: unchanged
    assert strategy.entry.status is OrderStatus.FILLED and strategy.entry.filled_quantity == 100
    # 100 (the order as Alpaca works it) + 80 = 180 x 100 > 15,000: refused, never sent
    assert strategy.more.rejection_code == "max_position_notional"
    assert strategy.more.order_id not in received
