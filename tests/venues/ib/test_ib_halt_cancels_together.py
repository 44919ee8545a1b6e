"""A halt's cancels leave together, through the real ib_async client against the simulated IB
Gateway: the broker hands all of them to ``IBGateway.cancel_many`` in one call, which writes every
cancel before awaiting any answer, so IB's silence costs about one ``cancel_wait``, not one per
order (a halt of N orders used to block the engine about N x ``cancel_wait`` while the last order
kept working and could fill).

* IB answers none of a halted strategy's 5 cancels (``cancel_reply`` ``lost``, IB-05): the 5
  reach IB within a fraction of ``cancel_wait`` of each other (before: about ``cancel_wait`` apart,
  2.0 s spread at 0.5 s), and the follow-up is unchanged: each is sent again once, IB loses those
  too, then one ALERT per order;
* a mix: one order filled at IB before its cancel arrived (10148, its fill's news delayed), the
  others' cancels confirmed: the filled one takes its fill once, the others end CANCELLED.
"""

from __future__ import annotations

from datetime import timedelta

from ib_helpers import START, config_for
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.venues.ib import IBBroker, IBFeed

CANCEL_WAIT = 0.5
N = 5


class FiveLimitsThenHalt(Strategy):
    """Five limit buys of AAPL on the first bar, far below the market (``cross``: that one at 101,
    it fills at the next open, its fill's news delayed 2 s); then the operator halts the strategy
    (another process writes the journal): the next bar's HALTED cancels them."""

    def __init__(self, halt_dir, sim, cross: int | None = None) -> None:
        self.halt_dir, self.sim, self.cross = halt_dir, sim, cross
        self.orders: list = []

    def on_data(self, timestamp, data, context, broker):
        if self.orders:
            return
        for i in range(N):
            if i == self.cross:  # (it holds back the fills of the next order placed)
                self.sim.inject("delay_fills", seconds=2.0, count=1)
            price = 101.0 if i == self.cross else 50.0 + i
            self.orders.append(broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=price))
        set_trading_state(next(self.halt_dir.glob("*.journal")), "HALTED", "operator")


def run(sim, strategy, state_dir, *, limit: int = 5, minutes: int = 6):
    broker = IBBroker(config_for(sim, cancel_wait=CANCEL_WAIT), strategy_id="together", state_dir=state_dir)
    broker.cancel_resends = CancelResends(after=0.0, limit=limit)  # due at each check (each bar)
    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="1 min", end=START + timedelta(minutes=minutes))
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="keep").run()  # fmt: skip
    finally:
        logger.remove(sink)
    return broker, lines


def test_a_halts_unanswered_cancels_reach_ib_together_and_are_followed_as_before(
    sim_factory, ib_log_guard, tmp_path
):
    ib_log_guard.expect(r"trading state ACTIVE -> HALTED: operator")
    ib_log_guard.expect(r"ALERT order \S+: the venue never confirmed its cancel")
    sim = sim_factory()
    sim.inject("cancel_reply", reply="lost", count=2 * N)  # the halt's 5, then their repeats
    strategy = FiveLimitsThenHalt(tmp_path, sim)
    broker, lines = run(sim, strategy, tmp_path, limit=1)
    cids = [o.order_id for o in strategy.orders]
    # the follow-up, as for one cancel: each sent again once (lost too), then its ALERT
    assert sim.request_count("CancelOrder") == 2 * N
    for cid in cids:
        assert any(line.startswith("WARNING") and cid in line and "cancel asked again" in line for line in lines)
        assert sum(line.startswith("ERROR") and f"ALERT order {cid}:" in line for line in lines) == 1, lines
    assert all(o.status is OrderStatus.CANCELLED and o.filled_quantity == 0 for o in strategy.orders)
    assert [(o.order_ref, o.status) for o in sim.orders] == [(cid, "Submitted") for cid in cids]  # IB works them
    assert sorted(o.order_id for o in broker.left_at_venue) == sorted(cids)
    assert len(sim.orders_received) == N  # the orders themselves were never sent again
    # the halt's 5 cancels reached IB together (each one waited out cancel_wait before: 2.0 s apart in all)
    halt = sim.requests_received("CancelOrder")[:N]
    spread = max(halt) - min(halt)
    assert spread < CANCEL_WAIT / 2, f"the halt's cancels reached IB {spread:.3f}s apart"


def test_a_halt_where_one_order_filled_first_and_the_others_are_confirmed(sim_factory, ib_log_guard, tmp_path):
    ib_log_guard.expect(r"trading state ACTIVE -> HALTED: operator")
    ib_log_guard.expect(r"Error 202, reqId \d+")  # IB's confirmations
    ib_log_guard.expect(r"Error 10148, reqId \d+: .*state: Filled")
    sim = sim_factory()
    strategy = FiveLimitsThenHalt(tmp_path, sim, cross=2)  # the middle one: taken cancels on both sides
    broker, lines = run(sim, strategy, tmp_path, minutes=4)
    filled = strategy.orders[2]
    assert sim.request_count("CancelOrder") == N  # nothing sent again
    assert filled.status is OrderStatus.FILLED and filled.filled_quantity == 3.0
    assert broker.book.positions["AAPL"].quantity == 3.0  # its fill once (its own frames came later)
    assert len(sim.fills) == 1
    assert any(filled.order_id in line and "its own events say how it ended" in line for line in lines), lines
    others = [o for o in strategy.orders if o is not filled]
    assert all(o.status is OrderStatus.CANCELLED and o.filled_quantity == 0 for o in others)
    assert sorted((o.order_ref, o.status) for o in sim.orders) == sorted(
        [(filled.order_id, "Filled")] + [(o.order_id, "Cancelled") for o in others]
    )
    assert broker.left_at_venue == [] and not broker.book.cancelling
