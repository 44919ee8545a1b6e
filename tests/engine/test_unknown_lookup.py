"""An order whose outcome became unknown in the session (its send timed out on the bridge, or
the gateway's ``place`` raised) is looked up by client order id during the session, bounded and
aged: found -> the venue's state, fills once by execution id; not found -> lost only after
``misses`` misses, each ``spacing`` seconds after the unknown began and after the previous miss;
a look-up that fails is not a miss (unknown is never read as gone); an order the venue adapter
follows itself is left to the adapter.

FakeVenue (tests/support/fakes.py) is the remote side; time is a fake clock given to the broker's
``UnknownOrders`` (no sleeps)."""

from __future__ import annotations

from datetime import timedelta

from loguru import logger
from ml4t.backtest import BacktestConfig, OrderSide, OrderStatus, OrderType

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import BridgeTimeout, ConnectionFailed, LookupIncomplete
from ml4t_live.events import OrderAccepted, OrderFilled
from ml4t_live.protocols import VenueOrder
from ml4t_live.unknown_orders import UnknownOrders
from ml4t_live.venue_broker import VenueBroker
from tests.engine.fake_clock import Clock
from tests.engine.unknown_outcome_support import (
    T0,
    WHEN,
    LimitThenWatch,
    UnknownVenue,
    at,
    start,
)
from tests.support.fakes import ListFeed, bar


def test_an_unknown_order_the_venue_has_filled_settles_with_its_fill_applied_once():
    clock = Clock()
    venue = UnknownVenue(reached=True, fill_on_wait=False)
    broker, order = start(venue, clock)
    cid = order.order_id
    fill = OrderFilled(cid, "X1", "AAA", OrderSide.BUY, 10, 99.0, WHEN, 1.0, 10)
    venue.answers[cid] = (VenueOrder(cid, "V1", "AAA", OrderSide.BUY, 10, 10, OrderType.LIMIT, "filled", 99.0),
                          [OrderAccepted(cid, "V1"), fill])  # fmt: skip
    at(broker, clock, 4.9)
    assert venue.looked_up == [] and order.status is OrderStatus.PENDING  # too soon: the venue may lag
    at(broker, clock, 5.0)
    assert venue.looked_up == [[cid]]
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 10
    venue.events.put(fill)  # the venue's stream reports the same execution again
    at(broker, clock, 30.0)
    assert venue.looked_up == [[cid]]  # settled: never looked up again, never lost
    assert broker.get_position("AAA").quantity == 10 and len(broker.get_fills()) == 1
    journal = broker.link.journal
    assert journal.intents()[cid]["status"] == "filled" and journal.positions() == {"AAA": 10.0}
    assert venue.placed and len(venue.placed) == 1  # never re-sent
    broker.close()


def test_an_unknown_order_the_venue_works_settles_as_accepted():
    clock = Clock()
    venue = UnknownVenue(reached=True, fill_on_wait=False)
    broker, order = start(venue, clock)
    cid = order.order_id
    venue.answers[cid] = (VenueOrder(cid, "V1", "AAA", OrderSide.BUY, 10, 0, OrderType.LIMIT, "open", 99.0), [])
    at(broker, clock, 5.0)
    assert order.status is OrderStatus.PENDING and cid in broker.book.acknowledged
    assert broker.link.journal.intents()[cid]["status"] == "accepted"
    at(broker, clock, 60.0)
    assert venue.looked_up == [[cid]] and order.status is OrderStatus.PENDING  # working: its events decide
    broker.close()


def test_an_unknown_order_the_venue_never_had_is_lost_only_after_the_bound_of_spaced_misses(logs):
    clock = Clock()
    venue = UnknownVenue(reached=False, fill_on_wait=False)
    broker, order = start(venue, clock)
    observed: list = []
    broker.observer = observed.append  # (what the run's notifications are told)
    cid = order.order_id
    for n, t in enumerate([5.0, 10.0, 15.0, 20.0], start=1):
        at(broker, clock, t - 0.1)  # not yet due: no look-up
        assert len(venue.looked_up) == n - 1
        at(broker, clock, t)
        assert len(venue.looked_up) == n
        assert order.status is OrderStatus.PENDING and broker.get_pending_orders() == [order]
    assert broker.link.journal.intents()[cid]["status"] == "unknown"
    assert not [m for level, m in logs if "lost" in m and level == "ERROR"]
    at(broker, clock, 25.0)  # the fifth miss, 25 s after the unknown began
    assert len(venue.looked_up) == 5
    assert order.status is OrderStatus.REJECTED and order.rejection_reason.startswith("lost:")
    assert broker.get_pending_orders() == []
    assert broker.link.journal.intents()[cid]["status"] == "lost"
    assert [m for level, m in logs if level == "ERROR" and m.startswith(f"ALERT order {cid} is lost")]
    assert [type(e).__name__ for e in observed] == ["OrderLost"]
    at(broker, clock, 60.0)
    assert len(venue.looked_up) == 5 and venue.placed == []  # no more look-ups; never re-sent
    broker.close()


def test_a_look_up_that_fails_is_not_a_miss():
    clock = Clock()
    venue = UnknownVenue(reached=False, fill_on_wait=False)
    broker, order = start(venue, clock, misses=2)
    venue.fail = [ConnectionFailed("look-up got no answer"), BridgeTimeout("lookup did not finish")]
    at(broker, clock, 5.0)  # fails (a venue error)
    at(broker, clock, 7.0)  # retried only after the spacing
    assert len(venue.looked_up) == 1
    at(broker, clock, 10.0)  # fails (the bridge)
    at(broker, clock, 15.0)  # the first miss
    assert len(venue.looked_up) == 3 and order.status is OrderStatus.PENDING
    at(broker, clock, 20.0)  # the second miss: the bound
    assert order.status is OrderStatus.REJECTED and order.rejection_code == "lost"
    broker.close()


def test_an_order_the_adapter_follows_itself_is_left_to_it_until_it_lets_go():
    clock = Clock()
    venue = UnknownVenue(reached=False, fill_on_wait=False)
    broker, order = start(venue, clock, misses=1)
    venue.follows.add(order.order_id)
    venue.follows_unknown = venue.follows.__contains__
    at(broker, clock, 5.0)
    at(broker, clock, 30.0)
    assert venue.looked_up == [] and order.status is OrderStatus.PENDING  # the adapter's look-ups own it
    venue.follows.clear()  # the adapter let go without an answer: the broker's look-ups take over
    at(broker, clock, 35.0)
    assert venue.looked_up == [[order.order_id]] and order.rejection_code == "lost"
    broker.close()


def test_the_engine_looks_up_an_unknown_order_before_the_next_bar():
    venue = UnknownVenue(reached=True, fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="unk")
    broker.unknown = UnknownOrders(spacing=0.0)  # due at the next fill barrier

    def found(cids):
        [cid] = cids
        fill = OrderFilled(cid, "X1", "AAA", OrderSide.BUY, 10, 99.0, WHEN, 1.0, 10)
        venue.answers[cid] = (VenueOrder(cid, "V1", "AAA", OrderSide.BUY, 10, 10, OrderType.LIMIT, "filled", 99.0),
                              [OrderAccepted(cid, "V1"), fill])  # fmt: skip
        return UnknownVenue.lookup(venue, cids)

    venue.lookup = found
    strategy = LimitThenWatch()
    feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(3)])
    LiveEngine(strategy, broker, feed, session_dir=False, settle_timeout=0.5,
               open_orders_at_end="keep").run()  # fmt: skip
    assert strategy.seen == [OrderStatus.FILLED, OrderStatus.FILLED]
    assert len(venue.looked_up) == 1 and len(venue.placed) == 1


def test_a_cancelled_unknown_order_the_look_up_finds_working_has_its_cancel_sent_again():
    """An order whose submit outcome is unknown, cancelled by the strategy (the cancel taken,
    never confirmed), then looked up and found working: the unknown-order look-up checks its
    cancel (``CancelResending._check_one``) and sends it again, counted as the follow-up's
    first check and try, the venue listing it."""
    clock = Clock()
    venue = UnknownVenue(reached=True, fill_on_wait=False)
    broker, order = start(venue, clock)
    broker.cancel_resends = CancelResends(clock=clock)
    cid = order.order_id
    assert broker.cancel_order(cid)
    assert cid in broker.book.cancelling and venue.cancelled == [cid]
    venue.answers[cid] = (VenueOrder(cid, "V1", "AAA", OrderSide.BUY, 10, 0, OrderType.LIMIT, "open", 99.0), [])
    at(broker, clock, 5.0)
    assert venue.cancelled == [cid, cid]
    follow = broker.cancel_resends.snapshot()[cid]
    assert (follow["checks"], follow["resends"], follow["listed"]) == (1, 1, True), follow
    broker.close()


class TwoUnknown(UnknownVenue):
    """UnknownVenue whose first two LIMIT sends time out (neither reached the venue), and whose
    look-up, asking for each id on its own (Alpaca's), cannot read ``unreadable``: it answers for
    the others (not found) and raises LookupIncomplete."""

    def __init__(self, **kw) -> None:
        super().__init__(reached=False, **kw)
        self.left, self.unreadable = 2, ""

    def place(self, request):
        if self.left and request.order_type is OrderType.LIMIT:
            self.left -= 1
            raise BridgeTimeout("ml4t-fake-session: place did not finish within 11s; it was cancelled")
        super().place(request)

    def lookup(self, cids):
        self.looked_up.append(list(cids))
        if self.unreadable not in cids:
            return {}
        raise LookupIncomplete("could not read 1 order", {}, {self.unreadable: "its report failed"})


def test_an_order_a_look_up_could_not_read_is_not_a_miss_and_the_others_are_answered():
    # before, LookupIncomplete was a failed look-up of all: b (read, not found) was not counted
    # as a miss either, and stayed PENDING
    clock = Clock()
    venue = TwoUnknown(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="unk")
    broker.unknown = UnknownOrders(clock=clock, misses=1)
    broker.connect(BacktestConfig())
    broker.begin_bar(bar(T0, {"AAA": 100.0}))
    a, b = (broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=p) for p in (99.0, 98.0))
    venue.unreadable = a.order_id
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="WARNING")
    try:
        at(broker, clock, 5.0)
    finally:
        logger.remove(sink)
    assert venue.looked_up == [[a.order_id, b.order_id]]
    assert b.status is OrderStatus.REJECTED and b.rejection_code == "lost"  # its miss counted (the bound: 1)
    assert a.status is OrderStatus.PENDING  # not read: not a miss
    assert any(line.startswith("WARNING") and f"could not read 1 of 2 order(s) of unknown outcome looked up by "
               f"client order id: {a.order_id} (" in line for line in lines), lines  # fmt: skip
    broker.close()
