"""A late answer to a timed-out order-list request, through the real ib_async client against the
simulated IB.

ib_async matches reqOpenOrders / reqAllOpenOrders ('openOrders') and reqCompletedOrders
('completedOrders') to their answers by name, not by request id: the end of whichever answer comes
next resolves whichever request of that name is pending. When a look-up's request times out (IB
slow to send) and the next look-up asks again, IB's late answer to the first request lands in the
second one's turn. The ``stale_order_list`` fault sends an answer as read when its request arrived,
``seconds`` later (after frames the gateway produced meanwhile: a conservative rehearsal). Here the
first request's answer comes 3 s late (request_timeout 2 s) and the second's 1.5 s late, so the
first answer arrives while the second request waits. Before the adapter waited for the first
answer (and dropped it), the second look-up took that older list as its own: an order cancelled,
or placed, in between read as absent at IB (``{}``). Now it waits, drops it and asks again.
"""

from __future__ import annotations

import pytest
from ib_helpers import DROP_ERRORS, is_, wait_for
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.errors import ConnectionFailed
from ml4t_live.events import (
    BrokerDisconnected,
    BrokerReconnected,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
)
from ml4t_live.protocols import OrderRequest


def _limit(coid: str) -> OrderRequest:
    return OrderRequest(coid, "AAPL", OrderSide.BUY, 3, OrderType.LIMIT, limit_price=50.0)


def test_a_late_completed_list_is_not_the_next_lookups_answer(
    sim_factory, gateway_factory, ib_log_guard
):
    """The first look-up's reqCompletedOrders is answered 3 s late (request_timeout 2 s) with
    the list as it was then (order "a" working, so not in it). "a" is cancelled meanwhile; the
    second look-up reads the open orders (no "a") and asks for the completed ones: the late list
    must not stand for them, or "a" reads as unknown to IB."""
    sim = sim_factory()
    ib_log_guard.expect(r"Error 202, reqId \d+")  # IB confirming the cancel
    gw = gateway_factory(sim, request_timeout=2.0)
    gw.connect()
    gw.place(_limit("a"))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "a"), seen=seen)
    sim.inject("stale_order_list", list="completedOrders", seconds=3.0)
    sim.inject("stale_order_list", list="completedOrders", seconds=1.5)
    with pytest.raises(ConnectionFailed, match="did not complete"):
        gw.lookup(["a"])
    gw.cancel("a")
    wait_for(gw.events, is_(OrderCancelled, "a"), seen=seen)
    assert {c: o.status for c, o in gw.lookup(["a"]).items()} == {"a": "cancelled"}


def test_a_late_open_list_is_not_the_next_lookups_answer(sim_factory, gateway_factory):
    """The same with reqOpenOrders: the first look-up's open list is read before order "b" is
    placed and sent 3 s later; "b" works at IB meanwhile and the second look-up must find it
    open, not absent (an order taken as never placed is one a restart would declare lost)."""
    sim = sim_factory()
    gw = gateway_factory(sim, request_timeout=2.0)
    gw.connect()
    sim.inject("stale_order_list", list="openOrders", seconds=3.0)
    sim.inject("stale_order_list", list="openOrders", seconds=1.5)
    with pytest.raises(ConnectionFailed, match="did not complete"):
        gw.lookup(["b"])
    gw.place(_limit("b"))
    wait_for(gw.events, is_(OrderAccepted, "b"))
    assert {c: o.status for c, o in gw.lookup(["b"]).items()} == {"b": "open"}


def test_a_late_executions_answer_is_not_the_next_lookups_answer(sim_factory, gateway_factory):
    """reqExecutions carries a request id, so ib_async matches its answers exactly: the first
    look-up's executions, read before market order "c" filled and sent 3 s later, do not stand for
    the second look-up's (sent 1.5 s late), which has the fill. Safe without the adapter's help."""
    sim = sim_factory()
    gw = gateway_factory(sim, request_timeout=2.0)
    gw.connect()
    gw.place(OrderRequest("c", "AAPL", OrderSide.BUY, 10))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "c"), seen=seen)
    sim.inject("stale_order_list", list="executions", seconds=3.0)
    sim.inject("stale_order_list", list="executions", seconds=1.5)
    with pytest.raises(ConnectionFailed, match="did not complete"):
        gw.lookup(["c"])
    gw.end_of_bar(None)  # step mode: the first bar opens and fills "c"
    fill = wait_for(gw.events, is_(OrderFilled, "c"), seen=seen)
    found = gw._call(gw._orders_()._inflight.lookup({"c"}), 10.0)
    assert [f.execution.execId for f in found["c"].fills] == [fill.exec_id]


def test_all_open_orders_after_a_timed_out_lookup_is_not_the_late_list(sim_factory, gateway_factory):
    """``all_open_orders`` (cancel-all, the operator's listing) asks the same 'openOrders' list as
    the look-ups: a look-up's request timed out (its answer 2.5 s late), order "b" is placed, then
    the listing's own request (answered 1 s late) must not take the late, older list without "b"."""
    sim = sim_factory()
    gw = gateway_factory(sim, request_timeout=2.0)
    gw.connect()
    sim.inject("stale_order_list", list="openOrders", seconds=2.5)
    sim.inject("stale_order_list", list="openOrders", seconds=1.0)
    with pytest.raises(ConnectionFailed):
        gw.lookup(["b"])
    gw.place(_limit("b"))
    wait_for(gw.events, is_(OrderAccepted, "b"))
    assert [o.client_order_id for o in gw.all_open_orders()] == ["b"]


def test_an_answer_owed_from_before_a_reconnect_is_neither_waited_for_nor_taken(
    sim_factory, gateway_factory, ib_log_guard
):
    """A look-up's request times out (its answer 3 s late), then the connection drops: that answer
    is gone with it. After the reconnect the next look-up asks and reads its own list (order "b",
    placed after the reconnect, open), neither failing on the old connection's request nor taking
    anything from it."""
    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gw = gateway_factory(sim, request_timeout=2.0)
    gw.connect()
    sim.inject("stale_order_list", list="openOrders", seconds=3.0)
    with pytest.raises(ConnectionFailed):
        gw.lookup(["b"])
    seen: list = []
    sim.inject("drop_connection", client_id=1)
    wait_for(gw.events, lambda e: isinstance(e, BrokerDisconnected), seen=seen)
    wait_for(gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen, timeout=15)
    gw.place(_limit("b"))
    wait_for(gw.events, is_(OrderAccepted, "b"), seen=seen)
    assert {cid: o.status for cid, o in gw.lookup(["b"]).items()} == {"b": "open"}
