"""An order whose send had an unknown outcome (the bridge call timed out: it may be working at
the venue) counts against the limits as a working order, fail closed, until the venue says what
became of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.errors import BridgeTimeout
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


class TwoBuys(Strategy):
    def __init__(self, venue: FakeVenue) -> None:
        self.venue, self.n = venue, 0
        self.first = self.second = None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.venue.raise_on["place"] = BridgeTimeout("the IB session did not answer within 5s")
            self.first = broker.submit_order("AAA", 100, order_type=OrderType.LIMIT, limit_price=99.0)
            self.second = broker.submit_order("AAA", 80, order_type=OrderType.LIMIT, limit_price=99.0)


def test_an_order_of_unknown_outcome_counts_as_working():
    venue = FakeVenue(fill_on_wait=False)
    strategy = TwoBuys(venue)
    broker = VenueBroker(venue, strategy_id="unknown", risk={"max_position_notional": 15_000})
    feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(2)])
    LiveEngine(strategy, broker, feed, session_dir=False, settle_timeout=0.2,
               open_orders_at_end="keep").run()  # fmt: skip
    assert strategy.first.status is OrderStatus.PENDING  # unknown: it may be working at the venue
    # 100 (perhaps working) + 80 = 180 x 100 = 18,000 > 15,000
    assert strategy.second.rejection_code == "max_position_notional"
    assert strategy.second.order_id not in {r.client_order_id for r in venue.placed}
