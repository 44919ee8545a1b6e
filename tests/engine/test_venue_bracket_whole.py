"""A bracket leaves whole or not at all, and an order whose place raised is never left in flight.

FakeVenue (tests/support/fakes.py) is the remote side: IB refuses an order by an error event
after placeOrder returned, so the real client cannot make ``place`` of the second or third order
of one ``submit_bracket`` call raise; the fake's ``place`` raises per order type instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType

from ml4t_live.errors import BridgeTimeout, CancelRefused, VenueError
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


@dataclass
class LegFailingVenue(FakeVenue):
    """``place`` of an order of a given type raises (each armed exception once)."""

    fail_type: dict[OrderType, Exception] = field(default_factory=dict)

    def place(self, request):
        failure = self.fail_type.pop(request.order_type, None)
        if failure is not None:
            raise failure
        super().place(request)


@pytest.fixture
def errors():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="ERROR")
    yield lines
    logger.remove(sink)


def connected(venue: FakeVenue) -> VenueBroker:
    broker = VenueBroker(venue, strategy_id="demo")
    broker.connect(BacktestConfig())
    broker.begin_bar(bar(T0, {"AAA": 100.0}))
    return broker


def test_a_refused_stop_leg_cancels_the_entry_and_the_take_profit(errors):
    venue = LegFailingVenue(fill_on_wait=False, fail_type={OrderType.STOP: VenueError("stop price invalid")})
    broker = connected(venue)
    entry, tp, sl = broker.submit_bracket("AAA", 10, take_profit=110.0, stop_loss=95.0)
    assert sl.status is OrderStatus.REJECTED and "stop price invalid" in sl.rejection_reason
    assert entry.status is OrderStatus.CANCELLED and tp.status is OrderStatus.CANCELLED
    assert venue.cancelled == [entry.order_id, tp.order_id]
    assert not broker.get_pending_orders()
    assert broker.settle(5.0) == 0 and venue.events.waits == []  # nothing left in flight
    assert any(f"bracket {entry.order_id}" in line and "cancelled" in line for line in errors)


def test_a_take_profit_with_an_unknown_outcome_cancels_the_whole_bracket(errors):
    venue = LegFailingVenue(fill_on_wait=False, fail_type={OrderType.LIMIT: BridgeTimeout("no answer in 5s")})
    broker = connected(venue)
    entry, tp, sl = broker.submit_bracket("AAA", 10, take_profit=110.0, stop_loss=95.0)
    # the take-profit may be working at the venue: its cancel is asked for too
    assert venue.cancelled == [entry.order_id, tp.order_id, sl.order_id]
    assert {o.status for o in (entry, tp, sl)} == {OrderStatus.CANCELLED}
    assert any(f"bracket {entry.order_id}" in line for line in errors)


def test_an_entry_that_cannot_be_cancelled_is_reported_unprotected(errors):
    venue = LegFailingVenue(fill_on_wait=False, fail_type={OrderType.STOP: VenueError("stop price invalid")})
    venue.raise_on["cancel"] = CancelRefused("AAA entry already filled")
    broker = connected(venue)
    entry, tp, _ = broker.submit_bracket("AAA", 10, take_profit=110.0, stop_loss=95.0)
    assert entry.status is OrderStatus.PENDING  # the venue decides: its fill will arrive
    assert tp.status is OrderStatus.CANCELLED and venue.cancelled == [tp.order_id]
    assert venue.placed[-1].order_type is OrderType.LIMIT  # no order the strategy did not make
    [line] = [m for m in errors if "UNPROTECTED" in m]
    assert "AAA" in line and "10" in line and entry.order_id in line


def test_an_unexpected_error_from_place_raises_and_leaves_nothing_in_flight():
    venue = FakeVenue(fill_on_wait=False, raise_on={"place": TypeError("bad field in translation")})
    broker = connected(venue)
    with pytest.raises(VenueError, match="fake.place raised TypeError: bad field in translation"):
        broker.submit_order("AAA", 10)
    assert broker.settle(5.0) == 0 and venue.events.waits == []  # the barrier does not wait for it
    [order] = broker.get_pending_orders()  # its outcome is unknown: never re-sent, looked up
    assert broker.link.journal.intents()[order.order_id]["status"] == "unknown"


def test_a_leg_whose_place_raises_cancels_the_bracket_and_a_warm_restart_replays_it_as_it_was():
    """Error policy 'log': bar 1's bracket raises at its stop leg (its orders are cancelled, the
    order after it is never made); a warm restart raises at the same leg from the journal, sends
    and cancels nothing again, and trades on."""
    from datetime import timedelta

    from ml4t.backtest import Strategy

    from ml4t_live import LiveEngine
    from tests.support.fakes import ListFeed

    class Bracket(Strategy):
        def on_data(self, timestamp, data, context, broker):
            if timestamp == T0:
                broker.submit_bracket("AAA", 10, take_profit=110.0, stop_loss=95.0)
                broker.submit_order("AAA", 2)  # never made: the bracket raised
            elif not broker.get_pending_orders():
                broker.submit_order("AAA", 1)

    venue = LegFailingVenue(fill_on_wait=True, fail_type={OrderType.STOP: TypeError("bad field")})

    def once(n: int):
        broker = VenueBroker(venue, strategy_id="legs", risk={"max_strategy_errors": 3})
        feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(n)])
        return LiveEngine(Bracket(), broker, feed, session_dir=False, settle_timeout=0.5, error_policy="log").run()

    first = once(2)
    assert first.metrics["num_strategy_errors"] == 1
    kinds = [(r.order_type, r.quantity) for r in venue.placed]
    assert kinds == [(OrderType.MARKET, 10), (OrderType.LIMIT, 10), (OrderType.MARKET, 1)]
    entry, tp = (r.client_order_id for r in venue.placed[:2])
    assert venue.cancelled[:2] == [entry, tp]
    cancels = len(venue.cancelled)
    once(3)  # bars 1-2 replayed from the journal: nothing sent or cancelled again
    assert [(r.order_type, r.quantity) for r in venue.placed] == [*kinds, (OrderType.MARKET, 1)]
    assert len(venue.cancelled) == cancels
