"""HALTED's cancel of an order Alpaca already has ``pending_cancel`` (a DELETE the runtime never
journaled: a kill -9 between Alpaca's 204 and the journal, or the operator's own DELETE), through
the real alpaca-py client against the simulated Alpaca (``lose_cancel``: that DELETE is never
carried out, the order works on). Alpaca refuses the halt's cancel (422): the order stays pending
for the strategy and is followed like an unanswered cancel: one WARNING, the cancel asked again
while Alpaca lists it working (never the order), then one ALERT; in ``left_at_venue`` at the end.
"""

from __future__ import annotations

from datetime import timedelta

from alpaca.trading.client import TradingClient
from alpaca_helpers import SESSION_OPEN, config_for, minute_bars
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed


class DeletedOutside(Strategy):
    """A limit buy far below the market; at the next bar someone else DELETEs it (Alpaca answers
    204, never carries it out) and the operator halts the strategy."""

    def __init__(self, sim, folder) -> None:
        self.sim, self.folder, self.n, self.order = sim, folder, 0, None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.order = broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0)
        elif self.n == 2:
            self.sim.inject("lose_cancel")
            client = TradingClient(self.sim.key_id, self.sim.secret_key, paper=True, url_override=self.sim.base_url)
            client.cancel_order_by_id(broker.gateway._venue_id(self.order.order_id))
            set_trading_state(next(self.folder.glob("*.journal")), "HALTED", "operator")


def test_a_halted_cancel_of_an_order_stuck_pending_cancel_is_followed_to_its_alert(tmp_path):
    sim = SimulatedAlpaca(minute_bars(20, {"AAPL": 100.0}), config=BacktestConfig(), rate_limit_per_minute=None)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    sim.start()
    try:
        cfg = config_for(sim)
        broker = AlpacaBroker(cfg, strategy_id="hp", state_dir=tmp_path)
        broker.cancel_resends = CancelResends(after=0.0)  # each bar's check is due: 5 checks, then the ALERT
        strategy = DeletedOutside(sim, tmp_path)
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=12))
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="cancel").run()  # fmt: skip
        at_alpaca = [(o["client_order_id"], o["status"]) for o in sim.orders()]
    finally:
        sim.close()
        logger.remove(sink)
    cid = strategy.order.order_id
    assert at_alpaca == [(cid, "pending_cancel")]  # never re-sent: the one order, still stuck
    assert strategy.order.status is OrderStatus.PENDING
    warned = [line for line in lines if line.startswith("WARNING") and "stays pending for the strategy" in line and cid in line]
    # the halt's refusal warned once; the end of the run is another request: it asks once more
    # (refused again, warned again), then the order is left at the venue
    assert [line.split(":")[0] for line in warned] == ["WARNING trading halted", "WARNING end of run"], warned
    assert all("pending_cancel" in line for line in warned)
    end = next(i for i, line in enumerate(lines) if line.startswith("WARNING end of run"))
    asked = [line for line in lines[:end] if line.startswith("WARNING") and cid in line and "was refused" in line]
    assert len(asked) == 5, asked  # the schedule's checks asked again, each refused 422
    alerts = [line for line in lines if line.startswith("ERROR") and "ALERT" in line and cid in line]
    assert len(alerts) == 1 and "refused its cancel" in alerts[0] and "still listed it working" in alerts[0], alerts
    assert not any(line.startswith("INFO") and "could not be cancelled" in line and cid in line for line in lines)
    assert [o.order_id for o in broker.left_at_venue] == [cid]
