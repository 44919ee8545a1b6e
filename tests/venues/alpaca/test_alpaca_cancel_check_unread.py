"""A cancel check's look-up of a cancelling submit of unknown outcome whose report keeps raising.

The operator halts the strategy right after its limit buy, whose submit's outcome is unknown (the
answer cut, the look-up unanswered, the trade stream silent) and whose every report raises. The
halt's cancel goes out (Alpaca cancels the order) but its end is never reported, so it stays
cancelling; each cancel check finds it no longer listed and looks it up by client order id, and
the look-up finds it but cannot report it. Before, the check's WARNING said it "could not look
up" the orders and the ALERT said the venue "no longer lists it working, nor found it by client
order id", which is untrue: Alpaca found it, the report failed. Now the WARNING names the order
not read and the ALERT says its look-up "could not read it". Real alpaca-py against
SimulatedAlpaca.
"""

from __future__ import annotations

from datetime import timedelta

from alpaca_helpers import SESSION_OPEN, config_for, minute_bars
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderType, Strategy
from unknown_support import ATTEMPTS, BreakingReader

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed


class UnknownThenHalted(Strategy):
    """Buys 3 at a limit below the market on its first bar, the submit's outcome made unknown and
    every report of it raising; then the operator halts the strategy (the journal in ``state``)."""

    def __init__(self, sim: SimulatedAlpaca, broker: AlpacaBroker, state) -> None:
        self.sim, self.gateway, self.state, self.order = sim, broker.gateway, state, None

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.gateway.stream.executions = BreakingReader(self.gateway.stream.executions)
            for kind, params in (("silence_trade_stream", {}), ("truncated_body", {}),
                                 ("lookup_error", {"count": ATTEMPTS})):  # fmt: skip
                self.sim.inject(kind, **params)
            self.order = broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0)
            set_trading_state(next(self.state.glob("*.journal")), "HALTED", "operator")


def test_a_cancelling_order_whose_look_up_cannot_report_it_is_alerted_as_not_read(tmp_path) -> None:
    sim = SimulatedAlpaca(minute_bars(12, {"AAPL": 100.0}), config=BacktestConfig(), rate_limit_per_minute=None)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    sim.start()
    try:
        cfg = config_for(sim, order_poll_interval=300.0)
        broker = AlpacaBroker(cfg, strategy_id="cu", state_dir=tmp_path)
        broker.cancel_resends = CancelResends(after=0.0, limit=2)  # checked at each bar (same logic)
        strategy = UnknownThenHalted(sim, broker, tmp_path)
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=9))
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="keep").run()  # fmt: skip
        at_alpaca = [(o["client_order_id"], o["status"]) for o in sim.orders()]
    finally:
        sim.close()
        logger.remove(sink)
    cid = strategy.order.order_id
    assert at_alpaca == [(cid, "canceled")]  # the halt's cancel went out
    assert cid in broker.book.cancelling  # its end never reported: unknown, never read as gone
    said = [line for line in lines if line.startswith("WARNING") and "cancelling order(s) the venue no longer" in line]
    assert said and all(f"could not read 1 of 1 cancelling order(s) the venue no longer lists, looked up by client "
                        f"order id: {cid} (" in line for line in said), said  # fmt: skip
    # the cancel's ALERT (the report's failures have ALERTs of their own)
    alerts = [line for line in lines if line.startswith("ERROR") and f"ALERT order {cid}: the venue never confirmed "
              "its cancel" in line]  # fmt: skip
    assert len(alerts) == 1 and "its look-up by client order id could not read it" in alerts[0], alerts
    assert "nor found it" not in alerts[0]
