"""A cancel Alpaca answered 204 but never carried out (``lose_cancel``: the order stays
``pending_cancel`` and works on, as Alpaca can leave a cancel pending), through the real alpaca-py
client against the simulated Alpaca. The runtime asks again; Alpaca refuses the repeat (422,
already ``pending_cancel``): the order stays followed, is never re-sent, and is reported: in
``left_at_venue`` at the end of a run, with an ALERT once its follow-up is exhausted.
"""

from __future__ import annotations

from datetime import timedelta

from alpaca_helpers import SESSION_OPEN, config_for, minute_bars
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed


class OneLimit(Strategy):
    """A limit buy far below the market on its first bar (it never fills); ``halt``: the state
    folder whose journal the operator halts right after."""

    def __init__(self, halt=None) -> None:
        self.order = None
        self.halt = halt

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0)
            if self.halt is not None:
                set_trading_state(next(self.halt.glob("*.journal")), "HALTED", "operator")


def run(strategy, end, state_dir, resends=None, lose=None):
    sim = SimulatedAlpaca(minute_bars(6, {"AAPL": 100.0}), config=BacktestConfig(), rate_limit_per_minute=None,
                          faults=[{"kind": "lose_cancel", "params": lose or {}}])  # fmt: skip
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    sim.start()
    try:
        cfg = config_for(sim)
        broker = AlpacaBroker(cfg, strategy_id="resend", state_dir=state_dir)
        if resends is not None:
            broker.cancel_resends = resends
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=4))
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end=end).run()  # fmt: skip
        at_alpaca = [(o["client_order_id"], o["status"]) for o in sim.orders()]
    finally:
        sim.close()
        logger.remove(sink)
    return broker, lines, at_alpaca


def test_a_lost_end_of_run_cancel_is_asked_again_refused_and_left_at_the_venue(tmp_path):
    strategy = OneLimit()
    broker, lines, at_alpaca = run(strategy, "cancel", tmp_path)
    cid = strategy.order.order_id
    assert any("lose_cancel" in line for line in lines)  # the first DELETE was lost
    assert any(line.startswith("WARNING") and cid in line and "was refused" in line and "pending_cancel" in line
               for line in lines), lines  # fmt: skip
    assert at_alpaca == [(cid, "pending_cancel")]  # one order at Alpaca (never re-sent), still working
    assert strategy.order.status is OrderStatus.CANCELLED  # as the strategy sees it since the end's cancel
    assert [o.order_id for o in broker.left_at_venue] == [cid]


def test_a_halted_strategys_stuck_cancel_is_followed_to_its_alert(tmp_path):
    strategy = OneLimit(halt=tmp_path)
    resends = CancelResends(after=0.0, limit=2)  # checked at each bar (spacing shortened; same logic)
    broker, lines, at_alpaca = run(strategy, "keep", tmp_path, resends)
    cid = strategy.order.order_id
    refused = [line for line in lines if cid in line and "was refused" in line]
    assert len(refused) == 2, refused  # both repeats refused (422 pending_cancel), neither ends the follow-up
    alerts = [line for line in lines if line.startswith("ERROR") and "ALERT" in line and cid in line]
    assert len(alerts) == 1 and "refused 2" in alerts[0] and "still listed it working" in alerts[0], alerts
    assert at_alpaca == [(cid, "pending_cancel")]
    assert [o.order_id for o in broker.left_at_venue] == [cid]


def test_a_pending_cancel_alpaca_ends_late_is_followed_to_its_end(tmp_path):
    strategy = OneLimit(halt=tmp_path)
    resends = CancelResends(after=0.0, limit=5)  # checked at each bar: the repeat is refused meanwhile
    broker, lines, at_alpaca = run(strategy, "keep", tmp_path, resends, lose={"bars": 2})
    cid = strategy.order.order_id
    assert any(cid in line and "was refused" in line for line in lines), lines
    assert at_alpaca == [(cid, "canceled")]  # ended by Alpaca itself, two bars on; never re-sent
    assert strategy.order.status is OrderStatus.CANCELLED and broker.left_at_venue == []
    assert not any("ALERT" in line for line in lines)
