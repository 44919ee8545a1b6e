"""A cancel Alpaca answered 204 but never carried out (``lose_cancel``: the order works on, as
Alpaca can leave a cancel pending) is sent again, through the real alpaca-py client against the
simulated Alpaca: the end-of-run ``cancel`` policy's DELETE is lost; after its wait the end sends
it once more and the order ends canceled at Alpaca and CANCELLED for the strategy, within the run.
"""

from __future__ import annotations

from datetime import timedelta

from alpaca_helpers import SESSION_OPEN, config_for, minute_bars
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed


class OneLimit(Strategy):
    """A limit buy far below the market on its first bar (it never fills)."""

    def __init__(self) -> None:
        self.order = None

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0)


def test_a_lost_end_of_run_cancel_is_sent_again_and_the_order_ends_canceled():
    sim = SimulatedAlpaca(minute_bars(5, {"AAPL": 100.0}), config=BacktestConfig(), rate_limit_per_minute=None,
                          faults=[{"kind": "lose_cancel", "params": {}}])  # fmt: skip
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    sim.start()
    try:
        cfg = config_for(sim)
        strategy = OneLimit()
        broker = AlpacaBroker(cfg, strategy_id="resend")
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=3))
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="cancel").run()  # fmt: skip
        at_alpaca = [(o["client_order_id"], o["status"]) for o in sim.orders()]
    finally:
        sim.close()
        logger.remove(sink)
    cid = strategy.order.order_id
    assert any("lose_cancel" in line for line in lines)  # the first DELETE was lost
    assert any(line.startswith("WARNING") and cid in line and "cancel asked again" in line for line in lines)
    assert at_alpaca == [(cid, "canceled")]  # one order at Alpaca (never re-sent), canceled
    assert strategy.order.status is OrderStatus.CANCELLED and broker.left_at_venue == []
