"""A bracket leaves whole or not at all, through the real ib_async client against the simulated
IB. IB takes the three orders of a bracket as three placeOrders (each transmitted) and refuses
one with an error event after placeOrder returned: here the stop-loss (the third placeOrder,
``refuse_next`` with ``skip=2``), seen at the next bar's fill barrier. The account may sell
short: on one that may not, IB refuses the exits of an unfilled entry themselves (201)."""

from __future__ import annotations

from datetime import timedelta

from ib_helpers import START, config_for, minute_bars
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.venues.ib import IBBroker, IBFeed

MARGIN = BacktestConfig(allow_short_selling=True)
TICK = "The price does not conform to the minimum price variation for this contract"


class OneBracket(Strategy):
    def __init__(self, **entry) -> None:
        self.entry, self.bracket, self.pending = entry, None, []

    def on_data(self, timestamp, data, context, broker):
        if self.bracket is None:
            self.bracket = broker.submit_bracket("AAPL", 10, **self.entry)
        else:
            self.pending.append(sorted(o.order_id for o in broker.get_pending_orders()))


def run(sim, strategy: OneBracket) -> dict[str, str]:
    sim.inject("refuse_next", skip=2, code=110, text=TICK)
    broker = IBBroker(config_for(sim), strategy_id="brk")
    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="1 min", end=START + timedelta(minutes=3))
    LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, open_orders_at_end="keep").run()
    return {o.order_ref: o.status for o in sim.orders}


def test_a_stop_loss_ib_refuses_cancels_the_working_entry_and_the_take_profit(sim_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 110")
    ib_log_guard.expect(r"bracket .* did not go out|Error 202")
    strategy = OneBracket(take_profit=150.0, stop_loss=40.0, entry_type=OrderType.LIMIT, entry_limit=50.0)
    at_ib = run(sim_factory(minute_bars(n=6), config=MARGIN), strategy)
    entry, tp, sl = strategy.bracket
    assert sl.status is OrderStatus.REJECTED and TICK in sl.rejection_reason
    assert entry.status is OrderStatus.CANCELLED and tp.status is OrderStatus.CANCELLED
    assert at_ib == {entry.order_id: "Cancelled", tp.order_id: "Cancelled"}  # nothing left working
    assert strategy.pending[0] == []  # the next on_data sees the bracket gone
    [line] = [m for _, m in ib_log_guard.loguru if "did not go out" in m]
    assert entry.order_id in line and sl.order_id in line


def test_a_stop_loss_ib_refuses_after_the_entry_filled_is_reported_unprotected(sim_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 110")
    ib_log_guard.expect(r"bracket .* did not go out|UNPROTECTED")
    strategy = OneBracket(take_profit=110.0, stop_loss=90.0)  # a market entry: filled at the next open
    at_ib = run(sim_factory(minute_bars(n=6), config=MARGIN), strategy)
    entry, tp, sl = strategy.bracket
    assert entry.status is OrderStatus.FILLED and sl.status is OrderStatus.REJECTED
    assert tp.status is OrderStatus.PENDING and at_ib[tp.order_id] == "Submitted"  # the target is kept
    assert len(at_ib) == 2  # nothing was sent the strategy did not make
    [line] = [m for _, m in ib_log_guard.loguru if "UNPROTECTED" in m]
    assert entry.order_id in line and "holds 10 AAPL" in line
