"""Regression (found by review, fixed): At the end of a run (finish_orders, policy cancel) a cancel the venue refuses because the order
just filled (IB: 10148 + look-up puts the fill on the queue, then CancelRefused) leaves the fill on
the event queue: the drain loop only runs while book.cancelling is non-empty, so the fill is never
applied nor journaled in this run, and the order is reported 'left at the venue' as pending."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.errors import CancelRefused
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


@dataclass
class FillsWhileCancelling(FakeVenue):
    def cancel(self, client_order_id):
        request = next(r for r in self.placed if r.client_order_id == client_order_id)
        self.fill(request)  # the fill won; the venue reports it, then refuses the cancel
        raise CancelRefused(f"{client_order_id}: cannot cancel, state Filled (10148)")


class OneLimit(Strategy):
    def on_data(self, timestamp, data, context, broker):
        if not broker.orders:
            self.order = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=99.0)


def test_a_fill_that_beats_the_end_of_run_cancel_is_applied(tmp_path):
    venue = FillsWhileCancelling(fill_on_wait=False)
    strategy = OneLimit()
    broker = VenueBroker(venue, strategy_id="eor", state_dir=tmp_path)
    feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(2)])
    LiveEngine(strategy, broker, feed, session_dir=False, settle_timeout=0.1).run()
    assert strategy.order.status is OrderStatus.FILLED, (strategy.order.status, broker.left_at_venue)
