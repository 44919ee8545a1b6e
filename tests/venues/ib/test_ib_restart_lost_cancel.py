"""A cancel IB never answered (lost on the way) is sent again by the restart, through the real
ib_async client against the simulated IB Gateway: the end-of-run cancel of a working limit is
lost (``cancel_reply`` ``lost``: no answer, the order works on), and so is the one the end of the
run sends again after its wait: the run ends with it unconfirmed;
the same strategy restarts from its journal, finds the order still working at IB and cancels it."""

from __future__ import annotations

from datetime import timedelta

from ib_helpers import START, OneLimit, config_for
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus

from ml4t_live import LiveEngine
from ml4t_live.venues.ib import IBBroker, IBFeed


def run(sim, strategy, minutes):
    broker = IBBroker(config_for(sim, cancel_wait=0.3), strategy_id="lostcancel")
    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="1 min", end=START + timedelta(minutes=minutes))
    LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
               open_orders_at_end="cancel").run()  # fmt: skip
    return broker


def test_a_lost_end_of_run_cancel_is_sent_again_after_the_restart(sim_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+")  # IB's confirmation of the second cancel
    sim = sim_factory()
    sim.inject("cancel_reply", reply="lost", count=2)  # the end's cancel, and its one repeat
    first = OneLimit()
    broker = run(sim, first, 3)
    cid = first.order.order_id
    assert [o.order_id for o in broker.left_at_venue] == [cid]  # unconfirmed at the end
    assert sim.request_count("CancelOrder") == 2
    assert [(o.order_ref, o.status) for o in sim.orders] == [(cid, "Submitted")]  # works on at IB

    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    second = OneLimit()
    try:
        broker = run(sim, second, 5)
    finally:
        logger.remove(sink)
    assert sim.request_count("CancelOrder") == 3, "the restart did not send the lost cancel again"
    assert [(o.order_ref, o.status) for o in sim.orders] == [(cid, "Cancelled")]
    assert second.order.order_id == cid and second.order.status is OrderStatus.CANCELLED
    assert broker.left_at_venue == []
    assert any(line.startswith("WARNING") and cid in line and "cancel asked again" in line for line in lines)
    assert len(sim.orders_received) == 1  # the order itself was never sent again
