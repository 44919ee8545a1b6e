"""A DELETE of an order whose split fill (the ``partial_fill`` fault) holds its remainder for the
next bar, through the real alpaca-py clients: Alpaca takes the DELETE (204, the order
``pending_cancel``) and the remainder's fill wins the race: the order ends ``filled``.

Before, the simulated Alpaca refused it 422 "order 1 is partially_filled and its remaining quantity
is already executing; it cannot be canceled" (the matching core's message, its integer id)."""

from __future__ import annotations

from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from alpacasim_support import StreamHarness, TradingClient, step

from ml4t_live.sim.alpaca import SimulatedAlpaca


def _split_order(sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> str:
    """A market buy of 10 MSFT that filled 5, its other 5 held to the next bar's open."""
    step(sim, trading)
    sim.inject("partial_fill", parts=2)
    order = trading.submit_order(MarketOrderRequest(symbol="MSFT", qty=10, side=OrderSide.BUY,
                                                    time_in_force=TimeInForce.DAY, client_order_id="t-split"))
    assert str(trade_stream.get().event) == "new"
    step(sim, trading)
    partial = trade_stream.get()
    assert str(partial.event) == "partial_fill" and partial.order.filled_qty == "5"
    return str(order.id)


def _the_fill_wins(sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness,
                   order_id: str) -> None:
    pending = trade_stream.get()
    assert str(pending.event) == "pending_cancel" and str(pending.order.id) == order_id
    assert pending.order.status is OrderStatus.PENDING_CANCEL and pending.order.filled_qty == "5"
    shown = trading.get_order_by_id(order_id)
    assert shown.status is OrderStatus.PENDING_CANCEL and shown.filled_qty == "5"
    step(sim, trading)  # the remainder fills at this bar's open
    fill = trade_stream.get()  # next: the fill, no "canceled" before it
    assert str(fill.event) == "fill" and str(fill.order.id) == order_id
    assert (fill.qty, fill.position_qty, fill.order.filled_qty) == (5.0, 10.0, "10")
    assert fill.order.status is OrderStatus.FILLED
    final = trading.get_order_by_id(order_id)
    assert final.status is OrderStatus.FILLED and final.filled_qty == "10" and final.canceled_at is None
    assert float(trading.get_open_position("MSFT").qty) == 10.0


def test_a_delete_of_a_split_fill_is_taken_and_the_fill_wins(sim: SimulatedAlpaca, trading: TradingClient,
                                                              trade_stream: StreamHarness) -> None:
    order_id = _split_order(sim, trading, trade_stream)
    trading.cancel_order_by_id(order_id)  # 204 (an APIError 422 before)
    _the_fill_wins(sim, trading, trade_stream, order_id)


def test_a_cancel_all_takes_a_split_fill_and_the_fill_wins(sim: SimulatedAlpaca, trading: TradingClient,
                                                           trade_stream: StreamHarness) -> None:
    order_id = _split_order(sim, trading, trade_stream)
    (result,) = trading.cancel_orders()  # DELETE /v2/orders: 207
    assert (str(result.id), result.status) == (order_id, 200)  # 422 before
    _the_fill_wins(sim, trading, trade_stream, order_id)
