"""The end of a run sends its unanswered cancels again together, through the real ib_async client
against the simulated IB Gateway: the final check hands every due repeat to
``IBGateway.cancel_many`` in one call, so a silent IB costs the end of the run about one
``cancel_wait`` for them all, not one per order.

A strategy leaves 5 limit buys working (far below the market); the end-of-run ``cancel`` policy
cancels them together and IB answers none of those cancels nor their repeats (``cancel_reply``
``lost``, IB-05). After its wait the end checks each once more (``final``): the 5 repeats reach IB
within a fraction of ``cancel_wait`` of each other (before: one ``cancel`` at a time, each waiting
out ``cancel_wait``: about 2.0 s from the first to the last at 0.5 s), each is logged as asked
again, and the 5 are left at the venue.
"""

from __future__ import annotations

from datetime import timedelta

from ib_helpers import START, config_for
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.venues.ib import IBBroker, IBFeed

CANCEL_WAIT = 0.5
N = 5


class FiveLimits(Strategy):
    """Five limit buys of AAPL on the first bar, far below the market (they never fill)."""

    def __init__(self) -> None:
        self.orders: list = []

    def on_data(self, timestamp, data, context, broker):
        if not self.orders:
            self.orders = [broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0 + i)
                           for i in range(N)]  # fmt: skip


def test_the_end_of_a_run_sends_its_unanswered_cancels_again_together(sim_factory, tmp_path):
    sim = sim_factory()
    sim.inject("cancel_reply", reply="lost", count=2 * N)  # the end's 5, then their repeats
    strategy = FiveLimits()
    broker = IBBroker(config_for(sim, cancel_wait=CANCEL_WAIT), strategy_id="endtogether", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(after=600.0)  # none due in the run: only the end's final check
    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="1 min", end=START + timedelta(minutes=3))
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="cancel").run()  # fmt: skip
    finally:
        logger.remove(sink)
    cids = [o.order_id for o in strategy.orders]
    assert sim.request_count("CancelOrder") == 2 * N  # the end's 5, each sent again once
    for cid in cids:
        said = [line for line in lines if line.startswith("WARNING") and cid in line
                and "(end of run) was never confirmed" in line and "cancel asked again (1 of at most 5;" in line]  # fmt: skip
        assert len(said) == 1, lines
    assert all(o.status is OrderStatus.CANCELLED and o.filled_quantity == 0 for o in strategy.orders)
    assert [(o.order_ref, o.status) for o in sim.orders] == [(cid, "Submitted") for cid in cids]  # IB works them
    assert sorted(o.order_id for o in broker.left_at_venue) == sorted(cids)
    assert len(sim.orders_received) == N  # the orders themselves were never sent again
    sent = sim.requests_received("CancelOrder")
    end, repeats = sent[:N], sent[N : 2 * N]
    assert min(repeats) - max(end) >= 0.5  # (the repeats came after the end's wait, settle_timeout)
    # the 5 repeats reached IB together: one wait for all (before: each waited out cancel_wait, 2.0 s in all)
    spread = max(repeats) - min(repeats)
    assert spread < CANCEL_WAIT / 2, f"the end's repeated cancels reached IB {spread:.3f}s apart"
