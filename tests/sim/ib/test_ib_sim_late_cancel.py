"""A late cancel (``cancel_reply`` "late", IB-18) as the order lists show it, through the real
ib_async client: IB keeps the order working as ``PendingCancel`` until it confirms the cancel, and
only then lists it among the completed orders.

The lists are read by a second client (clientId 2, reqAllOpenOrders / reqCompletedOrders) that has
no local state for the order, so what it sees is only what the gateway sent: the cancelling
client's own ib_async marks the trade PendingCancel locally the moment it cancels."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, LimitOrder, MarketOrder
from ibsim_support import advance, stock, until

WINDOW = 3.0  # seconds until IB confirms: ample for two look-ups on 127.0.0.1


async def _lists(ib: IB, ref: str) -> tuple[list[str], list[str]]:
    """(statuses of the open orders with ``ref``, statuses of the completed orders with ``ref``)."""
    opened = await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), 5)
    completed = await asyncio.wait_for(ib.reqCompletedOrdersAsync(apiOnly=True), 5)
    return (
        [t.orderStatus.status for t in opened if t.order.orderRef == ref],
        [t.orderStatus.status for t in completed if t.order.orderRef == ref],
    )


def test_a_late_cancel_is_listed_pending_cancel_until_confirmed_then_completed(
    client_factory, gateway, ib_errors
):
    ib_errors.expect(r"Error 202")
    gateway.inject("cancel_reply", reply="late", seconds=WINDOW)
    owner, observer = client_factory(1), client_factory(2)
    trades = []

    async def place_and_cancel(ib):
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="late-listed"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        ib.cancelOrder(trade.order)
        trades.append(trade)

    async def confirmed(ib):
        [trade] = trades
        await until(lambda: trade.orderStatus.status == "Cancelled", timeout=WINDOW + 5, what="the late cancel")

    owner.run(place_and_cancel)
    during = observer.run(lambda ib: _lists(ib, "late-listed"))
    owner.run(confirmed, timeout=WINDOW + 10)  # the window's end: Cancelled + 202 arrive
    after = observer.run(lambda ib: _lists(ib, "late-listed"))

    assert during == (["PendingCancel"], [])
    assert after == ([], ["Cancelled"])


def test_an_order_whose_cancel_is_late_does_not_fill_meanwhile(client, gateway, ib_errors):
    """IB is not executing it: a market order cancelled late stays unfilled over the next bars
    (without the cancel it fills at the next bar), and ends Cancelled with nothing filled."""
    ib_errors.expect(r"Error 202")
    gateway.inject("cancel_reply", reply="late", seconds=WINDOW)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 1, orderRef="late-unfilled"))
        await until(lambda: trade.orderStatus.status in ("PreSubmitted", "Submitted"))
        ib.cancelOrder(trade.order)
        for _ in range(2):
            await advance(ib, rt)
        during = (trade.orderStatus.status, list(trade.fills))
        await until(lambda: trade.orderStatus.status == "Cancelled", timeout=WINDOW + 5, what="the late cancel")
        return during, trade.orderStatus.filled

    during, filled = client.run(scenario, timeout=WINDOW + 15)
    assert during == ("PendingCancel", [])
    assert filled == 0 and gateway.fills == []


def test_ib_acting_on_a_late_cancel_it_holds_confirms_it_without_a_refusal(client, gateway, ib_errors):
    """``venue_cancels`` (IB acts on a cancel by itself) of an order whose late cancel IB holds:
    the owner gets ``Cancelled`` + 202 now, not a 10148 for a cancel it never sent again."""
    ib_errors.expect(r"Error 202")
    gateway.inject("cancel_reply", reply="late", seconds=600.0)  # never within the test

    async def scenario(ib):
        errors: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="late-acted"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        ib.cancelOrder(trade.order)
        listed = await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), 5)  # after the cancel, on one socket
        assert [t.orderStatus.status for t in listed if t.order.orderRef == "late-acted"] == ["PendingCancel"]
        gateway.venue_cancels("late-acted")
        await until(lambda: 202 in errors, what="IB's confirmation")
        return trade.orderStatus.status, errors

    status, errors = client.run(scenario, timeout=15)
    assert status == "Cancelled"
    assert errors == [202]
    assert [o.status for o in gateway.completed_orders if o.order_ref == "late-acted"] == ["Cancelled"]


def test_acting_on_a_held_bracket_cancel_confirms_its_orders_once(client, gateway, ib_errors):
    """A bracket's late cancel holds all three orders ``PendingCancel``; IB acting on it (through
    a child's ``orderRef``) confirms the three at once, and the late confirmation, when its time
    has come (proved by a later late cancel's confirmation, which the gateway schedules after
    it), sends none of them again."""
    ib_errors.expect(r"Error 202")
    gateway.inject("cancel_reply", reply="late", seconds=1.0)

    async def scenario(ib):
        errors: list[tuple[int, int]] = []
        ib.errorEvent += lambda req_id, code, *rest: errors.append((req_id, code))
        aapl = await stock(ib, "AAPL")
        bracket = ib.bracketOrder("BUY", 1, 50.0, takeProfitPrice=60.0, stopLossPrice=40.0)
        for order, ref in zip(bracket, ("bk-p", "bk-tp", "bk-sl"), strict=True):
            order.orderRef = ref
        trades = [ib.placeOrder(aapl, o) for o in bracket]
        await until(lambda: all(t.orderStatus.status in ("Submitted", "PreSubmitted") for t in trades))
        ib.cancelOrder(bracket.parent)
        listed = await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), 5)  # after the cancel, on one socket
        assert sorted(t.orderStatus.status for t in listed if t.order.orderRef.startswith("bk-")) == [
            "PendingCancel"] * 3  # fmt: skip
        gateway.venue_cancels("bk-sl")
        ids = {t.order.orderId for t in trades}
        await until(lambda: {r for r, c in errors if c == 202} >= ids, what="the bracket's confirmations")
        gateway.inject("cancel_reply", reply="late", seconds=1.5)
        later = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="after"))
        await until(lambda: later.orderStatus.status == "Submitted")
        ib.cancelOrder(later.order)
        await until(lambda: (later.order.orderId, 202) in errors, timeout=10, what="the later late cancel")
        return ids, [(r, c) for r, c in errors if r in ids], [t.orderStatus.status for t in trades]

    ids, errors, statuses = client.run(scenario, timeout=30)
    assert sorted(errors) == sorted((i, 202) for i in ids)  # one confirmation each, no 10148
    assert statuses == ["Cancelled"] * 3
    completed = [o.order_ref for o in gateway.completed_orders if o.order_ref.startswith("bk-")]
    assert sorted(completed) == ["bk-p", "bk-sl", "bk-tp"]


def test_venue_cancels_of_an_unknown_order_ref_says_so(gateway):
    with pytest.raises(ValueError, match="no working order with orderRef 'nobody'"):
        gateway.venue_cancels("nobody")
