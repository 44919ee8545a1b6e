"""The simulated Alpaca's stale reads by client order id and stale listings (``stale_client_id_read``,
``stale_listing``): a read or a listing lagging the fills and replaces the trade stream already
reported, as ``stale_order_read`` / ``stale_replaced_read`` are for a read by id."""

from __future__ import annotations

from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    ReplaceOrderRequest,
)
from alpacasim_support import StreamHarness, TradingClient, step

from ml4t_live.sim.alpaca import SimulatedAlpaca

BUY, DAY = OrderSide.BUY, TimeInForce.DAY


def _replaced(trading: TradingClient, trade_stream: StreamHarness) -> tuple[str, str]:
    """An order ``s`` (not filling) replaced by ``s.r1``: (its id, the replacement's)."""
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=1,
                                                   client_order_id="s"))  # fmt: skip
    trade_stream.get_event("new")
    new = trading.replace_order_by_id(order.id, ReplaceOrderRequest(qty=2, client_order_id="s.r1"))
    assert trade_stream.get_event("replaced").order.id == order.id
    return str(order.id), str(new.id)


def test_a_stale_client_id_read_answers_a_replaced_order_as_before_its_replace(
        sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:  # fmt: skip
    _old, new = _replaced(trading, trade_stream)
    sim.inject("stale_client_id_read", fill=False)
    stale = trading.get_order_by_client_id("s")
    assert (stale.status, stale.replaced_by) == (OrderStatus.NEW, None)
    fresh = trading.get_order_by_client_id("s")  # (one read only)
    assert (fresh.status, str(fresh.replaced_by)) == (OrderStatus.REPLACED, new)


def test_a_stale_client_id_read_answers_the_order_as_before_its_last_fill(
        sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:  # fmt: skip
    trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=10_000,
                                           client_order_id="f"))  # fmt: skip
    step(sim, trading)
    assert trade_stream.get_event("fill").order.filled_qty == "1"
    sim.inject("stale_client_id_read", replace=False)
    stale = trading.get_order_by_client_id("f")
    assert (stale.status, stale.filled_qty, stale.filled_avg_price) == (OrderStatus.NEW, "0", None)
    assert trading.get_order_by_client_id("f").filled_qty == "1"  # (one read only)


def test_a_stale_listing_shows_a_replaced_order_as_before_its_replace(
        sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:  # fmt: skip
    old, new = _replaced(trading, trade_stream)
    sim.inject("stale_listing")
    listed = {str(o.id): o for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))}
    assert set(listed) == {old, new}  # (the old order read as still working)
    assert (listed[old].status, listed[old].replaced_by) == (OrderStatus.NEW, None)
    fresh = {str(o.id): o for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))}
    assert (fresh[old].status, str(fresh[old].replaced_by)) == (OrderStatus.REPLACED, new)  # (one listing only)
    assert trading.get_order_by_client_id("s").status is OrderStatus.REPLACED  # (reads by id are not affected)
