"""The ``slow_replace`` fault, through the real alpaca-py clients: a PATCH answered at once while
the old order stays ``pending_replace`` (working, it can fill) for ``bars`` bars."""

from __future__ import annotations

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, ReplaceOrderRequest
from alpacasim_support import StreamHarness, TradingClient, step

from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.sim.alpaca.faults import UnknownFault

BUY, DAY = OrderSide.BUY, TimeInForce.DAY


def test_a_slow_replace_leaves_the_old_order_pending_replace_until_its_bars_have_opened(
        sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:  # fmt: skip
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=1))
    trade_stream.get_event("new")
    sim.inject("slow_replace", bars=2)
    new = trading.replace_order_by_id(order.id, ReplaceOrderRequest(qty=2, client_order_id="slow.r1"))
    assert (new.status, new.qty, str(new.replaces)) == (OrderStatus.PENDING_NEW, "2", str(order.id))
    assert trade_stream.get_event("pending_replace").order.id == order.id
    assert trading.get_order_by_id(order.id).status is OrderStatus.PENDING_REPLACE
    for again in (lambda: trading.replace_order_by_id(order.id, ReplaceOrderRequest(qty=3)),
                  lambda: trading.cancel_order_by_id(order.id), lambda: trading.cancel_order_by_id(new.id)):
        with pytest.raises(APIError) as refused:  # nothing else is taken while the replace is pending
            again()
        assert refused.value.status_code == 422
    step(sim, trading)  # one bar: still pending
    assert trading.get_order_by_id(order.id).status is OrderStatus.PENDING_REPLACE
    step(sim, trading)  # the second: carried out
    assert trade_stream.get_event("replaced").order.id == order.id
    assert trade_stream.get_event("new").order.id == new.id
    assert trading.get_order_by_id(new.id).status is OrderStatus.NEW
    assert trading.get_order_by_id(order.id).status is OrderStatus.REPLACED


def test_an_order_that_fills_while_its_replace_is_pending_leaves_the_replacement_canceled(
        sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:  # fmt: skip
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY,
                                                   limit_price=10_000))  # fmt: skip
    trade_stream.get_event("new")
    sim.inject("slow_replace", bars=2)
    new = trading.replace_order_by_id(order.id, ReplaceOrderRequest(qty=2))
    step(sim, trading)  # the old order meets this bar's open while its replace is pending
    assert trade_stream.get_event("fill").order.id == order.id
    step(sim, trading)
    assert trade_stream.get_event("canceled").order.id == new.id
    assert trading.get_order_by_id(order.id).filled_qty == "1"
    assert trading.get_order_by_id(new.id).status is OrderStatus.CANCELED
    assert sum(f.qty for f in sim.fills()) == 1


def test_slow_replace_needs_at_least_one_bar(sim: SimulatedAlpaca) -> None:
    with pytest.raises(UnknownFault):
        sim.inject("slow_replace", bars=0)


def test_a_stale_order_read_answers_the_order_as_before_its_last_fill(
        sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:  # fmt: skip
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY,
                                                   limit_price=10_000))  # fmt: skip
    step(sim, trading)
    assert trade_stream.get_event("fill").order.filled_qty == "1"
    sim.inject("stale_order_read")
    stale = trading.get_order_by_id(order.id)  # the stream reported the fill; REST lags
    assert (stale.status, stale.filled_qty, stale.filled_avg_price) == (OrderStatus.NEW, "0", None)
    fresh = trading.get_order_by_id(order.id)  # (one read only)
    assert (fresh.status, fresh.filled_qty) == (OrderStatus.FILLED, "1")


def test_an_order_read_error_refuses_the_reads_of_one_order_after_those_it_skips(
        sim: SimulatedAlpaca, trading: TradingClient) -> None:  # fmt: skip
    one, other = (trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY,
                                                         limit_price=1)) for _ in range(2))  # fmt: skip
    sim.inject("order_read_error", order_id=str(one.id), skip=1, count=2)
    assert trading.get_order_by_id(one.id).id == one.id  # skipped
    assert trading.get_order_by_id(other.id).id == other.id  # another order
    for _ in range(2):
        with pytest.raises(APIError) as refused:
            trading.get_order_by_id(one.id)
        assert refused.value.status_code == 503
    assert trading.get_order_by_id(one.id).id == one.id


def test_an_order_read_error_of_404_answers_an_order_the_listing_shows_as_not_found(
        sim: SimulatedAlpaca, trading: TradingClient) -> None:  # fmt: skip
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=1))
    sim.inject("order_read_error", order_id=str(order.id), status=404)
    with pytest.raises(APIError) as missing:
        trading.get_order_by_id(order.id)
    assert (missing.value.status_code, missing.value.code) == (404, 40410000)  # Alpaca's "order not found"
    assert [o.id for o in trading.get_orders()] == [order.id]  # the listing shows it meanwhile
    assert trading.get_order_by_id(order.id).id == order.id
    with pytest.raises(UnknownFault):
        sim.inject("order_read_error", status=302)  # (a 4xx, a 5xx, or 200)


def test_a_stale_replaced_read_answers_a_replaced_order_as_before_its_replace(
        sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:  # fmt: skip
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=1))
    trade_stream.get_event("new")
    sim.inject("stale_replaced_read")
    assert trading.get_order_by_id(order.id).status is OrderStatus.NEW  # (not replaced yet: served as it is)
    new = trading.replace_order_by_id(order.id, ReplaceOrderRequest(qty=2, client_order_id="stale.r1"))
    assert trade_stream.get_event("replaced").order.id == order.id
    stale = trading.get_order_by_id(order.id)  # the stream reported the replace; REST lags
    assert (stale.status, stale.replaced_by) == (OrderStatus.NEW, None)
    fresh = trading.get_order_by_id(order.id)  # (one read only)
    assert (fresh.status, str(fresh.replaced_by)) == (OrderStatus.REPLACED, str(new.id))


def test_replaced_by_late_answers_a_replaced_order_without_its_replacement(
        sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:  # fmt: skip
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=1,
                                                   client_order_id="late"))  # fmt: skip
    trade_stream.get_event("new")
    sim.inject("replaced_by_late", count=2)
    assert trading.get_order_by_id(order.id).status is OrderStatus.NEW  # (not replaced yet: served as it is)
    new = trading.replace_order_by_id(order.id, ReplaceOrderRequest(qty=2, client_order_id="late.r1"))
    assert trade_stream.get_event("replaced").order.id == order.id
    for late in (trading.get_order_by_id(order.id), trading.get_order_by_client_id("late")):
        assert (late.status, late.replaced_by) == (OrderStatus.REPLACED, None)
    named = trading.get_order_by_client_id("late")  # (two reads only)
    assert (named.status, str(named.replaced_by)) == (OrderStatus.REPLACED, str(new.id))
