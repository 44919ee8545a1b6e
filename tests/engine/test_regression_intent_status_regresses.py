"""Regression (found by review, fixed): A venue that reports an order's cancel before its last partial execution (IB: orderStatus
Cancelled can precede execDetails): the journal's intent goes cancelled -> 'partial' (not
terminal), so `ml4t-live reconcile` reports it open forever and a recovered orders.parquet says
PENDING."""
from datetime import UTC, datetime

from ml4t.backtest import BacktestConfig, OrderSide, OrderType

from ml4t_live.events import OrderCancelled, OrderPartiallyFilled
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue


def test_cancel_then_late_partial(tmp_path):
    venue = FakeVenue(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="cp", state_dir=tmp_path)
    broker.connect(BacktestConfig())
    order = broker.submit_order("AAA", 100, order_type=OrderType.LIMIT, limit_price=90.0)
    cid = order.order_id
    venue.events.put(OrderCancelled(cid, "cancelled"))
    venue.events.put(OrderPartiallyFilled(cid, "E1", "AAA", OrderSide.BUY, 30, 90.0,
                                          datetime(2024, 1, 2, tzinfo=UTC), 0.0, 30))
    broker.settle(0)
    broker.link.journal.commit()
    intent = broker.link.journal.intents()[cid]
    broker.close()
    assert order.filled_quantity == 30
    assert intent["status"] in ("cancelled", "filled", "rejected", "lost"), intent
