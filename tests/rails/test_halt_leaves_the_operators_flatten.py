"""HALTED cancels the strategy's working orders, never the runtime's own: the closing orders of
the operator's ``halt --flatten`` work until they fill, across bars, a restart, and a strategy
that cancels what it sees pending (a venue fake: the flatten's order rests, e.g. before the open)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ml4t.backtest import OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.journal.store import set_trading_state
from ml4t_live.protocols import VenueOrder
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bars(n: int) -> list:
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(n)]


class BuyThenFlatten(Strategy):
    """Bar 1: buy 10 AAA. Bar 2 (``operate``): the operator halts and flattens (the closing order
    will rest). With ``tidy``, every bar from the third cancels every pending order it sees."""

    def __init__(self, venue: FakeVenue, operate: bool = True, tidy: bool = False) -> None:
        self.venue, self.operate, self.tidy = venue, operate, tidy
        self.n, self.cancelled = 0, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 10)
        if self.n == 2 and self.operate:
            self.venue.fill_on_wait = False  # the flatten's order will rest
            set_trading_state(broker.own.journal.path, "HALTED", "desk: flatten", flatten=True)
        if self.tidy and self.n >= 3:
            self.cancelled += [o.order_id for o in list(broker.pending_orders) if broker.cancel_order(o.order_id)]


def _sells(venue: FakeVenue) -> list:
    return [r for r in venue.placed if r.side.value == "sell"]


def test_a_restart_halted_leaves_the_operators_flatten_working(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    LiveEngine(BuyThenFlatten(venue), VenueBroker(venue, strategy_id="rf", state_dir=tmp_path), ListFeed(bars(3)),
               session_dir=False, settle_timeout=0.5, open_orders_at_end="keep").run()  # fmt: skip
    [sell] = _sells(venue)
    assert venue.cancelled == []
    # the process died with the closing order working at the venue; the same strategy restarts HALTED
    venue.open_orders.append(VenueOrder(sell.client_order_id, "V9", "AAA", sell.side, 10.0, 0.0,
                                        OrderType.MARKET, "open"))  # fmt: skip
    LiveEngine(BuyThenFlatten(venue, operate=False), VenueBroker(venue, strategy_id="rf", state_dir=tmp_path),
               ListFeed(bars(5)), session_dir=False, settle_timeout=0.5, open_orders_at_end="keep").run()  # fmt: skip
    assert sell.client_order_id not in venue.cancelled
    assert len(_sells(venue)) == 1  # nothing else to close: the flatten was sent once


def test_the_strategy_cannot_cancel_the_operators_flatten(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    strategy = BuyThenFlatten(venue, tidy=True)
    LiveEngine(strategy, VenueBroker(venue, strategy_id="fl", state_dir=tmp_path), ListFeed(bars(5)),
               session_dir=False, settle_timeout=0.5, open_orders_at_end="keep").run()  # fmt: skip
    [sell] = _sells(venue)
    assert strategy.cancelled == []
    assert sell.client_order_id not in venue.cancelled
