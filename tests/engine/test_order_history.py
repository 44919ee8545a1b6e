"""A venue broker keeps every order answerable after it finished, in packed form
(:mod:`ml4t_live.order_history`): ``broker.orders``, ``get_order`` and ``get_rejected_orders``
answer exactly what the orders were, the objects a strategy holds stay the ones it is handed,
and an order the venue changes after it finished still changes."""

from __future__ import annotations

import copy
import gc
import weakref
from datetime import UTC, datetime

from ml4t.backtest import BacktestConfig, OrderStatus

from ml4t_live.events import OrderCancelled, OrderRejected
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
T1 = datetime(2024, 1, 2, 14, 31, tzinfo=UTC)
PRICES = {"AAA": 100.0, "BBB": 50.0, "CCC": 20.0}


def connected(venue: FakeVenue) -> VenueBroker:
    broker = VenueBroker(venue, strategy_id="hist")
    broker.connect(BacktestConfig())
    broker.begin_bar(bar(T0, PRICES))
    return broker


def finish_three(venue: FakeVenue, broker: VenueBroker) -> list:
    """One filled, one rejected, one cancelled (confirmed) order; their records taken, as
    RecordKeeper takes them after each bar (from then on they are packed), and the next bar
    begun (the risk rails let go of the orders that ended)."""
    filled = broker.submit_order("AAA", 10)
    rejected = broker.submit_order("BBB", 5)
    cancelled = broker.submit_order("CCC", 7)
    venue.fill(venue.placed[0])
    venue.events.put(OrderRejected(rejected.order_id, "insufficient buying power", "201"))
    assert broker.cancel_order(cancelled.order_id)
    venue.events.put(OrderCancelled(cancelled.order_id, "cancelled"))
    broker.settle(0)
    finished, fills = broker.take_new_records()
    assert {o.order_id for o in finished} == {filled.order_id, rejected.order_id, cancelled.order_id}
    assert len(fills) == 1
    broker.begin_bar(bar(T1, PRICES))
    return [filled, rejected, cancelled]


def test_finished_orders_are_answered_exactly_after_nobody_holds_them():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    orders = finish_three(venue, broker)
    expected = copy.deepcopy(orders)
    held = [weakref.ref(o) for o in orders]
    del orders
    gc.collect()
    assert [ref() for ref in held] == [None, None, None]  # the book keeps values, not the objects

    assert len(broker.orders) == 3
    assert list(broker.orders) == expected  # every field, as it was
    assert broker.orders[-1] == expected[2] and broker.orders[0:2] == expected[:2]
    for order in expected:
        assert broker.get_order(order.order_id) == order
    assert [o.status for o in broker.orders] == [OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.CANCELLED]
    assert broker.get_rejected_orders() == [expected[1]]
    assert broker.get_order("no-such-order") is None


def test_an_order_the_strategy_holds_is_the_object_it_gets_back():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    filled, rejected, cancelled = finish_three(venue, broker)
    assert broker.get_order(filled.order_id) is filled
    assert broker.orders[1] is rejected and list(broker.orders)[2] is cancelled
    filled.note = "kept"  # a change the strategy makes to an order it holds is seen
    assert broker.get_order(filled.order_id).note == "kept"
    ids = [filled.order_id, rejected.order_id]
    del filled, rejected, cancelled
    gc.collect()
    again = broker.get_order(ids[0])  # built from its values, then the same while held
    assert again is broker.get_order(ids[0]) and again is broker.orders[0]


def test_an_order_with_attributes_of_the_strategys_own_keeps_them():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10)
    order.tag = "momentum"
    venue.fill(venue.placed[0])
    broker.settle(0)
    broker.take_new_records()
    broker.begin_bar(bar(T1, PRICES))
    oid = order.order_id
    del order
    gc.collect()
    assert broker.get_order(oid).tag == "momentum"
    assert broker.get_order(oid).status is OrderStatus.FILLED


def test_a_fill_after_a_confirmed_cancel_reaches_the_packed_order():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10)
    assert broker.cancel_order(order.order_id)
    venue.events.put(OrderCancelled(order.order_id, "cancelled"))
    broker.settle(0)
    finished, _ = broker.take_new_records()
    assert [o.status for o in finished] == [OrderStatus.CANCELLED]
    broker.begin_bar(bar(T1, PRICES))
    oid, held = order.order_id, weakref.ref(order)
    del order, finished
    gc.collect()
    assert held() is None  # packed: the fill below reaches the order through its values

    venue.fill(venue.placed[0])  # the venue filled it after all: the fill wins
    broker.settle(0)
    order = broker.get_order(oid)
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 10
    assert broker.get_position("AAA").quantity == 10
    finished, fills = broker.take_new_records()  # recorded again, its final state last
    assert finished == [order] and len(fills) == 1
    del order, finished
    gc.collect()
    assert broker.get_order(oid).status is OrderStatus.FILLED  # packed again, as it ended
