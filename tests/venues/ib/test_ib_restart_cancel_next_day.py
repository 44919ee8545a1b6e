"""An end-of-run cancel IB acted on only after the process had ended (its confirmation reached
nobody), and the restart comes on the next trading day, through the real ib_async client against
the simulated IB Gateway: IB lists neither the order (not working) nor, on a new day, its
completed order or executions, so the look-ups never find it. The restored cancelling order ends
CANCELLED ("ended while away"), a WARNING, at the restart's look-up: no ``ALERT ... lost`` and no
permanent ``lost`` intent (review of d132490, M1)."""

from __future__ import annotations

from datetime import timedelta

from ib_helpers import START, OneLimit, config_for
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus

from ml4t_live import LiveEngine
from ml4t_live.journal.operator_access import read_only
from ml4t_live.venues.ib import IBBroker, IBFeed


def run(sim, strategy, minutes, state_dir):
    broker = IBBroker(config_for(sim, cancel_wait=0.3), strategy_id="lostcancel", state_dir=state_dir)
    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="1 min", end=START + timedelta(minutes=minutes))
    LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
               open_orders_at_end="cancel").run()  # fmt: skip
    return broker


def test_a_cancelling_order_ib_no_longer_lists_on_a_later_day_ends_cancelled_not_lost(sim_factory, tmp_path):
    sim = sim_factory()
    sim.inject("cancel_reply", reply="lost", count=2)  # the end's cancel, and its one repeat
    first = OneLimit()
    broker = run(sim, first, 3, tmp_path)
    cid = first.order.order_id
    assert [o.order_id for o in broker.left_at_venue] == [cid]  # its cancel unconfirmed at the end
    sim.venue_cancels(cid)  # IB acts on it after the process ended
    sim.new_day()

    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])), level="INFO")
    second = OneLimit()
    try:
        broker = run(sim, second, 5, tmp_path)
    finally:
        logger.remove(sink)
    assert second.order.order_id == cid and second.order.status is OrderStatus.CANCELLED
    assert broker.left_at_venue == []
    journal = read_only(next(tmp_path.glob("*.journal")))
    intent = journal.intents()[cid]
    journal.close()
    assert intent["status"] == "cancelled", intent
    assert intent["reason"].startswith("ended while away")
    assert not [m for level, m in lines if level == "ERROR"]
    assert [m for level, m in lines if level == "WARNING" and cid in m and "ended while away" in m]
    assert len(sim.orders_received) == 1  # the order itself was never sent again
