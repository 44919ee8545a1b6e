"""Shared set-up for the engine's unknown-outcome tests: a venue whose first limit ``place`` times
out on the bridge (``UnknownVenue``), the broker started on it with that order unknown (``start``),
fill barriers at chosen times (``at``) and a run of ``LimitThenWatch`` (FakeVenue is the remote
side; time is the fake clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.errors import BridgeTimeout
from ml4t_live.events import OrderCancelled
from ml4t_live.protocols import VenueOrder
from ml4t_live.unknown_orders import UnknownOrders
from ml4t_live.venue_broker import VenueBroker
from tests.engine.fake_clock import Clock
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
WHEN = datetime(2024, 1, 2, 14, 31, tzinfo=UTC)


class UnknownVenue(FakeVenue):
    """``place`` of the first LIMIT order times out on the bridge, after the venue took it
    (``reached``) or before; ``lookup`` answers from ``answers`` (cid -> VenueOrder, and the
    events a real gateway reports for a found order), or raises what ``fail`` holds."""

    def __init__(self, *, reached: bool, **kw) -> None:
        super().__init__(**kw)
        self.reached = reached
        self.armed = True
        self.answers: dict[str, tuple[VenueOrder, list]] = {}
        self.fail: list[Exception] = []
        self.looked_up: list[list[str]] = []
        self.follows: set[str] = set()

    def place(self, request):
        if self.armed and request.order_type is OrderType.LIMIT:
            self.armed = False
            if self.reached:
                self.placed.append(request)
            raise BridgeTimeout("ml4t-fake-session: place did not finish within 11s; it was cancelled")
        super().place(request)

    def lookup(self, cids):
        self.looked_up.append(list(cids))
        if self.fail:
            raise self.fail.pop(0)
        out = {}
        for cid in cids:
            if cid in self.answers:
                venue_order, events = self.answers[cid]
                for event in events:  # (a real gateway reports what it found as events)
                    self.events.put(event)
                out[cid] = venue_order
        return out


def start(venue: FakeVenue, clock: Clock, **unknown):
    broker = VenueBroker(venue, strategy_id="unk")
    broker.unknown = UnknownOrders(clock=clock, **unknown)
    broker.connect(BacktestConfig())
    broker.begin_bar(bar(T0, {"AAA": 100.0}))
    order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=99.0)
    assert order.status is OrderStatus.PENDING
    assert broker.link.journal.intents()[order.order_id]["status"] == "unknown"
    return broker, order


def at(broker: VenueBroker, clock: Clock, t: float) -> None:
    """The next fill barrier, ``t`` seconds after the unknown began."""
    clock.now = 1000.0 + t
    broker.settle(0)


class LimitThenWatch(Strategy):
    """Bar 1: a limit order (its send times out); each later bar records the order's status."""

    def __init__(self) -> None:
        self.order = None
        self.seen: list[OrderStatus] = []

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=99.0)
        else:
            self.seen.append(self.order.status)


class ConfirmsCancels(UnknownVenue):
    """A cancel is confirmed at once (an event) and the order leaves the open-order list."""

    def cancel(self, client_order_id):
        self.cancelled.append(client_order_id)
        self.open_orders = [o for o in self.open_orders if o.client_order_id != client_order_id]
        self.events.put(OrderCancelled(client_order_id, "cancelled"))


def run_limit_then_watch(venue, n, *, misses=2, spacing=0.0, end="keep", state_dir=None):
    broker = VenueBroker(venue, strategy_id="unk", state_dir=state_dir)
    broker.unknown = UnknownOrders(spacing=spacing, misses=misses)
    strategy = LimitThenWatch()
    feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(n)])
    LiveEngine(strategy, broker, feed, session_dir=False, settle_timeout=0.2, open_orders_at_end=end).run()
    return broker, strategy
