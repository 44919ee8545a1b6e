"""Shared set-up for the engine's warm-restart tests: one-minute bars of AAA (live or catch-up),
a strategy that buys, places a limit and cancels it (``Stepper``), and a run of it on a venue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ml4t.backtest import OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.events import BarClosed
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bars(n: int, start: int = 0, catch_up: bool = False) -> list[BarClosed]:
    out = []
    for i in range(start, start + n):
        b = bar(T0 + timedelta(minutes=i), {"AAA": 100.0 + i})
        out.append(BarClosed(b.timestamp, b.data, b.context, catch_up))
    return out


class Stepper(Strategy):
    """Buys 10 on bar 1, places a limit on bar 2, cancels it on bar 4; counts what it saw."""

    def __init__(self) -> None:
        self.n = 0
        self.limit = None
        self.orders = []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.orders.append(broker.submit_order("AAA", 10))
        if self.n == 2:
            self.limit = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)
            self.orders.append(self.limit)
        if self.n == 4 and self.limit is not None:
            self.cancelled = broker.cancel_order(self.limit.order_id)


def run(strategy, venue, feed_bars, **kw):
    broker = VenueBroker(venue, strategy_id=kw.pop("strategy_id", "stepper"), **kw.pop("broker", {}))
    return LiveEngine(strategy, broker, ListFeed(feed_bars), session_dir=False, settle_timeout=0.5, **kw).run()
