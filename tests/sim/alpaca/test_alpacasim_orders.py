"""Orders through the real TradingClient: types, classes, time in force, fractional, lookups, lists,
replace, cancel, client_order_id uniqueness. Prices: AAPL bar i opens at 100 + i (high +1, low -1,
close +0.5); an order placed while bar i is current fills from bar i + 1 (ml4t.backtest NEXT_BAR)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    QueryOrderStatus,
    TimeInForce,
)
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)
from alpacasim_support import step

from ml4t_live.sim.alpaca import SimulatedAlpaca

BUY, SELL = OrderSide.BUY, OrderSide.SELL
DAY, GTC = TimeInForce.DAY, TimeInForce.GTC
NESTED = GetOrderByIdRequest(nested=True)  # legs are shown only when asked (see test_legs_by_id_only_when_nested)


def _start(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    step(sim, trading)  # bar 0 is current; orders now fill from bar 1 (open 101)


def test_market_order_fills_at_next_bar_open(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    order = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side=BUY, time_in_force=DAY,
                                                    client_order_id="m-1"))
    assert order.status is OrderStatus.NEW and order.order_class is OrderClass.SIMPLE and order.qty == "2"
    step(sim, trading)
    filled = trading.get_order_by_id(order.id)
    assert filled.status is OrderStatus.FILLED and filled.filled_avg_price == "101" and filled.filled_qty == "2"
    assert filled.filled_at == datetime(2024, 3, 4, 14, 31, tzinfo=UTC)
    assert trading.get_order_by_client_id("m-1").id == order.id


@pytest.mark.parametrize(
    ("request_", "fill_price"),
    [
        (LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, limit_price=101.25), 101.25),
        (StopOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, stop_price=101.75), 101.75),
        (StopLimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, stop_price=101.5,
                               limit_price=102.0), 102.0),
    ],
    ids=["limit", "stop", "stop_limit"],
)
def test_priced_orders_fill_like_the_backtest(sim: SimulatedAlpaca, trading: TradingClient, request_: object,
                                              fill_price: float) -> None:
    """The expected prices are ml4t.backtest's fill rules (limit at the limit, stop at the stop)."""
    _start(sim, trading)
    order = trading.submit_order(request_)
    assert order.type is OrderType(request_.type) and order.status is OrderStatus.NEW
    step(sim, trading)
    done = trading.get_order_by_id(order.id)
    assert done.status is OrderStatus.FILLED and float(done.filled_avg_price) == fill_price


def test_limit_that_is_not_reached_stays_open(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, limit_price=90))
    step(sim, trading)
    step(sim, trading)
    assert trading.get_order_by_id(order.id).status is OrderStatus.NEW


def test_trailing_stop_by_price_and_percent(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side=BUY, time_in_force=GTC))
    step(sim, trading)
    by_price = trading.submit_order(TrailingStopOrderRequest(symbol="AAPL", qty=1, side=SELL, time_in_force=GTC,
                                                             trail_price=5))
    by_percent = trading.submit_order(TrailingStopOrderRequest(symbol="AAPL", qty=1, side=SELL, time_in_force=DAY,
                                                               trail_percent=50))
    assert by_price.type is OrderType.TRAILING_STOP and by_price.trail_price == "5"
    assert by_percent.trail_percent == "50" and by_percent.status is OrderStatus.NEW
    # working, as on Alpaca: hwm = the last price (bar 1 closed at 101.5), stop = hwm - trail
    assert (by_price.hwm, by_price.stop_price) == ("101.5", "96.5")
    assert (by_percent.hwm, by_percent.stop_price) == ("101.5", "50.75")
    step(sim, trading)
    # prices only rise: neither trailing stop is hit; bar 2's high (103) raised both marks
    now = {o.id: trading.get_order_by_id(o.id) for o in (by_price, by_percent)}
    assert {o.status for o in now.values()} == {OrderStatus.NEW}
    assert (now[by_price.id].hwm, now[by_price.id].stop_price) == ("103", "98")
    assert (now[by_percent.id].hwm, now[by_percent.id].stop_price) == ("103", "52.25")
    wider = trading.replace_order_by_id(by_price.id, ReplaceOrderRequest(trail=6))
    assert wider.trail_price == "6" and wider.replaces == by_price.id


def test_buy_trailing_stop_tracks_the_low_water_mark(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    step(sim, trading)  # bar 1 closed at 101.5
    order = trading.submit_order(TrailingStopOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=GTC,
                                                          trail_price=3))
    assert (order.hwm, order.stop_price) == ("101.5", "104.5")  # for a buy: the lowest price seen + trail
    step(sim, trading)  # bar 2: low 101 lowers the stop to 104; high 103 does not reach it
    working = trading.get_order_by_id(order.id)
    assert (working.status, working.hwm, working.stop_price) == (OrderStatus.NEW, "101", "104")
    step(sim, trading)  # bar 3: high 104 reaches the stop
    done = trading.get_order_by_id(order.id)
    assert done.status is OrderStatus.FILLED and done.filled_avg_price == "104"


def test_bracket_legs_are_held_then_live_then_oco(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    parent = trading.submit_order(MarketOrderRequest(
        symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=102.75), stop_loss=StopLossRequest(stop_price=95)))
    assert parent.order_class is OrderClass.BRACKET and len(parent.legs) == 2
    assert {leg.status for leg in parent.legs} == {OrderStatus.HELD}
    stop_leg = next(leg for leg in parent.legs if leg.type is OrderType.STOP)
    moved = trading.replace_order_by_id(stop_leg.id, ReplaceOrderRequest(stop_price=96))  # a held leg may move
    assert moved.status is OrderStatus.HELD and moved.stop_price == "96" and moved.replaces == stop_leg.id
    assert moved.id in [leg.id for leg in trading.get_order_by_id(parent.id, NESTED).legs]
    assert {(leg.type, leg.side) for leg in parent.legs} == {(OrderType.LIMIT, SELL), (OrderType.STOP, SELL)}
    step(sim, trading)  # parent fills at 101; legs go live (the stop-loss shows held, as on Alpaca)
    legs = trading.get_order_by_id(parent.id, NESTED).legs
    assert trading.get_order_by_id(parent.id).status is OrderStatus.FILLED
    assert {leg.type: leg.status for leg in legs} == {OrderType.LIMIT: OrderStatus.NEW, OrderType.STOP: OrderStatus.HELD}
    step(sim, trading)  # bar 2 high is 103: the take-profit fills, the stop is canceled (OCO)
    after = {leg.type: leg.status for leg in trading.get_order_by_id(parent.id, NESTED).legs}
    assert after == {OrderType.LIMIT: OrderStatus.FILLED, OrderType.STOP: OrderStatus.CANCELED}


def test_oco_and_oto(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    trading.submit_order(MarketOrderRequest(symbol="MSFT", qty=2, side=BUY, time_in_force=GTC))
    step(sim, trading)
    oco = trading.submit_order(LimitOrderRequest(
        symbol="MSFT", qty=1, side=SELL, time_in_force=GTC, order_class=OrderClass.OCO,
        take_profit=TakeProfitRequest(limit_price=402.5), stop_loss=StopLossRequest(stop_price=380)))
    assert oco.order_class is OrderClass.OCO and oco.type is OrderType.LIMIT and oco.limit_price == "402.5"
    assert [leg.status for leg in oco.legs] == [OrderStatus.NEW]
    oto = trading.submit_order(MarketOrderRequest(
        symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, order_class=OrderClass.OTO,
        stop_loss=StopLossRequest(stop_price=90)))
    assert oto.order_class is OrderClass.OTO and [leg.status for leg in oto.legs] == [OrderStatus.HELD]
    step(sim, trading)
    assert trading.get_order_by_id(oco.id).status is OrderStatus.FILLED
    assert trading.get_order_by_id(oco.id, NESTED).legs[0].status is OrderStatus.CANCELED
    assert trading.get_order_by_id(oto.id, NESTED).legs[0].status is OrderStatus.NEW


def test_legs_by_id_only_when_nested(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    """``GET /v2/orders/{id}`` shows a multi-leg order's ``legs`` only with ``nested=true`` (Alpaca's
    reference: "If true, the result will roll up multi-leg orders under the legs field of primary
    order"); the look-up by client order id, which documents no such parameter, shows them."""
    _start(sim, trading)
    bracket = trading.submit_order(MarketOrderRequest(
        symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, order_class=OrderClass.BRACKET, client_order_id="br",
        take_profit=TakeProfitRequest(limit_price=500), stop_loss=StopLossRequest(stop_price=1)))
    assert len(bracket.legs) == 2  # the submit's answer carries them
    assert trading.get_order_by_id(bracket.id).legs is None
    assert trading.get_order_by_id(bracket.id, GetOrderByIdRequest(nested=False)).legs is None
    legs = trading.get_order_by_id(bracket.id, NESTED).legs
    assert sorted(str(leg.id) for leg in legs) == sorted(str(leg.id) for leg in bracket.legs)
    assert len(trading.get_order_by_client_id("br").legs) == 2
    plain = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, limit_price=1))
    assert trading.get_order_by_id(plain.id, NESTED).legs is None  # a simple order has none to roll up


def test_time_in_force_cls_ioc_day_opg_gtc(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    cls = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=TimeInForce.CLS))
    ioc = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=TimeInForce.IOC,
                                                 limit_price=90))
    day = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=90))
    gtc = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, limit_price=90))
    step(sim, trading)
    cls_done = trading.get_order_by_id(cls.id)
    assert cls_done.status is OrderStatus.FILLED and cls_done.filled_avg_price == "100.5"  # bar 0's close
    step(sim, trading)
    assert trading.get_order_by_id(ioc.id).status is OrderStatus.CANCELED
    opg = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=TimeInForce.OPG,
                                                 limit_price=90))
    while sim.state()["now"].day != 5:  # replay to the second session
        step(sim, trading)
    assert trading.get_order_by_id(day.id).status is OrderStatus.EXPIRED
    assert trading.get_order_by_id(gtc.id).status is OrderStatus.NEW
    assert trading.get_order_by_id(opg.id).status is OrderStatus.EXPIRED


def test_fractional_and_notional_market_day(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    fractional = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1.5, side=BUY, time_in_force=DAY))
    notional = trading.submit_order(MarketOrderRequest(symbol="AAPL", notional=1005, side=BUY, time_in_force=DAY))
    assert fractional.qty == "1.5" and notional.notional == "1005" and notional.qty is None
    step(sim, trading)
    assert trading.get_order_by_id(fractional.id).filled_qty == "1.5"
    filled = trading.get_order_by_id(notional.id)
    assert filled.status is OrderStatus.FILLED and float(filled.filled_qty) == pytest.approx(1005 / 100.5)
    with pytest.raises(APIError) as refused:
        trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=0.5, side=BUY, time_in_force=GTC))
    assert refused.value.status_code == 422 and "DAY" in refused.value.message


def test_lookups_and_list_filters(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    a = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, client_order_id="a"))
    step(sim, trading)
    b = trading.submit_order(LimitOrderRequest(symbol="MSFT", qty=1, side=BUY, time_in_force=GTC, limit_price=1,
                                               client_order_id="b"))
    bracket = trading.submit_order(MarketOrderRequest(
        symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, order_class=OrderClass.BRACKET, client_order_id="c",
        take_profit=TakeProfitRequest(limit_price=500), stop_loss=StopLossRequest(stop_price=1)))
    ids = lambda orders: [o.client_order_id for o in orders]
    assert ids(trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))) == ["a"]
    open_flat = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))  # legs listed too
    assert len(open_flat) == 4 and ids(open_flat)[2:] == ["c", "b"]  # newest first; legs came last
    assert {o.status for o in open_flat[:2]} == {OrderStatus.HELD}
    nested = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True, direction="asc"))
    assert ids(nested) == ["a", "b", "c"] and len(nested[2].legs) == 2
    assert ids(trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["MSFT"]))) == ["b"]
    assert ids(trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True, limit=1))) == ["c"]
    after = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True,
                                                after=datetime(2024, 3, 4, 14, 31, 30, tzinfo=UTC)))
    assert sorted(ids(after)) == ["b", "c"]
    until = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True,
                                                until=datetime(2024, 3, 4, 14, 31, 30, tzinfo=UTC)))
    assert ids(until) == ["a"]
    assert trading.get_order_by_client_id("b").id == b.id and trading.get_order_by_id(a.id).symbol == "AAPL"
    assert len(trading.get_order_by_id(bracket.id, NESTED).legs) == 2
    with pytest.raises(APIError) as missing:
        trading.get_order_by_client_id("nope")
    assert missing.value.status_code == 404 and missing.value.code == 40410000


def test_replace_creates_a_new_order_that_replaces_the_old(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    old = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, limit_price=90,
                                                 client_order_id="r-1"))
    new = trading.replace_order_by_id(old.id, ReplaceOrderRequest(qty=2, limit_price=101.5, client_order_id="r-2"))
    assert new.id != old.id and new.replaces == old.id and new.qty == "2" and new.limit_price == "101.5"
    previous = trading.get_order_by_id(old.id)
    assert previous.status is OrderStatus.REPLACED and previous.replaced_by == new.id
    step(sim, trading)
    assert trading.get_order_by_client_id("r-2").status is OrderStatus.FILLED
    with pytest.raises(APIError) as finished:
        trading.replace_order_by_id(new.id, ReplaceOrderRequest(limit_price=99))
    assert finished.value.status_code == 422


def test_cancel_one_and_all(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    _start(sim, trading)
    orders = [trading.submit_order(LimitOrderRequest(symbol=s, qty=1, side=BUY, time_in_force=GTC, limit_price=1))
              for s in ("AAPL", "MSFT", "AAPL")]
    assert trading.cancel_order_by_id(orders[0].id) is None  # 204, empty body
    assert trading.get_order_by_id(orders[0].id).status is OrderStatus.CANCELED
    with pytest.raises(APIError) as twice:
        trading.cancel_order_by_id(orders[0].id)
    assert twice.value.status_code == 422
    bracket = trading.submit_order(MarketOrderRequest(
        symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=500), stop_loss=StopLossRequest(stop_price=1)))
    step(sim, trading)  # the parent fills; its two legs are live orders now
    responses = trading.cancel_orders()
    legs = [leg.id for leg in bracket.legs]
    assert sorted((str(r.id), r.status) for r in responses) == sorted((str(i), 200) for i in
                                                                      [o.id for o in orders[1:]] + legs)
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []


def test_client_order_id_is_unique_even_after_cancel(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    first = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, limit_price=1,
                                                   client_order_id="same"))
    trading.cancel_order_by_id(first.id)
    with pytest.raises(APIError) as duplicate:
        trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY,
                                                client_order_id="same"))
    assert duplicate.value.status_code == 422
    assert duplicate.value.code == 40010001 and duplicate.value.message == "client_order_id must be unique"


def test_server_side_validation_errors(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    with pytest.raises(APIError) as unknown:
        trading.submit_order(MarketOrderRequest(symbol="ZZZZ", qty=1, side=BUY, time_in_force=DAY))
    assert unknown.value.status_code == 422 and "ZZZZ" in unknown.value.message
    with pytest.raises(APIError) as no_price:  # notional before any bar: no last trade to size it
        trading.submit_order(MarketOrderRequest(symbol="AAPL", notional=100, side=BUY, time_in_force=DAY))
    assert no_price.value.status_code == 422
    with pytest.raises(APIError) as extended:
        trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY,
                                                extended_hours=True))
    assert extended.value.status_code == 422 and "extended hours" in extended.value.message
