"""Through the real alpaca-py client against the simulated Alpaca: the adapter sends a bracket's
two exits as one Alpaca ``oco`` order (with the second exit). When Alpaca refuses it (403,
nothing created), both exits are REJECTED with Alpaca's reason; the first one no longer stays
pending for ever (the fill barrier waited for it at every bar)."""

from __future__ import annotations

from datetime import timedelta

from alpaca_helpers import SESSION_OPEN, config_for, minute_bars
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed

REFUSE_THE_OCO = {"kind": "refuse_next", "after_orders": 1, "params": {"message": "insufficient qty available"}}


class OneBracket(Strategy):
    def __init__(self) -> None:
        self.bracket = None

    def on_data(self, timestamp, data, context, broker):
        if self.bracket is None:
            self.bracket = broker.submit_bracket("AAPL", 10, take_profit=60.0, stop_loss=40.0,
                                                 entry_type=OrderType.LIMIT, entry_limit=50.0)  # fmt: skip


def test_a_refused_exit_pair_rejects_both_exits_at_alpaca():
    sim = SimulatedAlpaca(minute_bars(5, {"AAPL": 100.0}), config=BacktestConfig(), rate_limit_per_minute=None,
                          faults=[REFUSE_THE_OCO])  # fmt: skip
    logged: list[str] = []
    sink = logger.add(lambda m: logged.append(m.record["message"]), level="WARNING")
    sim.start()
    try:
        cfg = config_for(sim)
        strategy = OneBracket()
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=3))
        LiveEngine(strategy, AlpacaBroker(cfg, strategy_id="brk"), feed, config=BacktestConfig(), session_dir=False,
                   open_orders_at_end="keep").run()  # fmt: skip
        at_alpaca = {o["client_order_id"] for o in sim.orders()}
    finally:
        sim.close()
        logger.remove(sink)
    entry, tp, sl = strategy.bracket
    assert [o.status for o in (tp, sl)] == [OrderStatus.REJECTED] * 2
    assert all("insufficient qty available" in o.rejection_reason for o in (tp, sl))
    assert at_alpaca == {entry.order_id}  # the exits never reached Alpaca
    assert not [line for line in logged if "still in flight" in line]  # no exit waited for at a bar
