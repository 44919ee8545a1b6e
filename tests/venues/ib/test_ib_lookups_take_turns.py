"""Look-ups by orderRef take turns, through the real ib_async client against the simulated IB.

ib_async keys reqOpenOrders / reqAllOpenOrders ('openOrders') and reqCompletedOrders
('completedOrders') by name: a second one while the first is pending replaces its future. The
first caller then never gets an answer (it times out), and the second answer's frames hit a
KeyError that ib_async logs as an ERROR (``ib_log_guard`` fails the test on it). IB answering
reqCompletedOrders slowly (the ``slow_completed_orders`` fault) makes two look-ups overlap.
"""

from __future__ import annotations

import asyncio

import pytest
from ib_helpers import is_, wait_for
from loguru import logger
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.errors import CancelRefused
from ml4t_live.events import OrderAccepted, OrderCancelled
from ml4t_live.protocols import OrderRequest


def test_two_lookups_at_once_both_answered(sim_factory, gateway_factory, ib_log_guard):
    sim = sim_factory()
    gw = gateway_factory(sim, request_timeout=2.0)
    gw.connect()
    gw.place(OrderRequest("a", "AAPL", OrderSide.BUY, 3, OrderType.LIMIT, limit_price=50.0))
    wait_for(gw.events, is_(OrderAccepted, "a"))
    sim.inject("slow_completed_orders", count=2, seconds=0.5)
    tracker = gw._orders_()

    async def both():
        return await asyncio.gather(tracker.lookup({"a"}), tracker.lookup({"a"}), return_exceptions=True)

    first, second = gw._call(both(), 15.0)
    assert not isinstance(first, BaseException), first
    assert not isinstance(second, BaseException), second
    assert set(first) == set(second) == {"a"}


def test_refused_repeat_lookup_and_follower_take_turns(sim_factory, gateway_factory, ib_log_guard):
    """After a refused repeat cancel the adapter's own look-up and the follower's first one
    (``inflight_check_interval`` later) overlap while IB answers reqCompletedOrders slowly."""
    ib_log_guard.expect(r"Error 10148, reqId \d+: .*state: PendingCancel")
    ib_log_guard.expect(r"Error 202, reqId \d+")
    failed: list[str] = []
    sink = logger.add(lambda m: failed.append(m.record["message"]), level="WARNING",
                      filter=lambda r: "look-up" in r["message"] and "failed" in r["message"])  # fmt: skip
    try:
        sim = sim_factory()
        gw = gateway_factory(sim, cancel_wait=0.3, request_timeout=1.0, inflight_check_interval=0.2)
        gw.connect()
        gw.place(OrderRequest("slow", "AAPL", OrderSide.BUY, 3, OrderType.LIMIT, limit_price=50.0))
        wait_for(gw.events, is_(OrderAccepted, "slow"))
        sim.inject("slow_completed_orders", count=5, seconds=0.5)
        sim.inject("cancel_reply", reply="late", seconds=4.0)
        gw.cancel("slow")
        with pytest.raises(CancelRefused):
            gw.cancel("slow")
        wait_for(gw.events, is_(OrderCancelled, "slow"), timeout=8)
    finally:
        logger.remove(sink)
    assert failed == []
