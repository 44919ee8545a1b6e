"""A look-up of an order a modify replaced reports its CURRENT incarnation.

A modify at Alpaca is a replace: a new order under ``<cid>.r<n>``, the order under ``cid`` stays
``replaced`` (``replaced_by`` = the new order's id). ``lookup([cid])`` read only the order under
``cid``, whose ``replaced`` status counts as cancelled: the runtime ended the order CANCELLED while
its replacement filled (in a session after a lost cancel, and at a warm restart). Through the real
alpaca-py client against SimulatedAlpaca.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    ReplaceOrderRequest,
)
from alpaca_helpers import collect, config_for, drain, inject, minute_bars, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderCancelled, OrderFilled, OrderReplaced
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def _limit(price: float) -> OrderRequest:
    return OrderRequest("t-a", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=price)


@pytest.fixture
def fresh(sim: SimulatedAlpaca) -> Iterator[list[AlpacaGateway]]:
    """Gateways made by the test, closed at its end (a second one is a restarted process)."""
    made: list[AlpacaGateway] = []
    yield made
    for gw in made:
        gw.close()


def _gateway(sim: SimulatedAlpaca, made: list[AlpacaGateway]) -> AlpacaGateway:
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0), is_ours=lambda c: c.startswith("t-"))
    made.append(gw)
    gw.connect()
    return gw


def _place_and_modify(sim: SimulatedAlpaca, gw: AlpacaGateway, new_limit: float) -> None:
    """t-a rests at 50 (the market is near 100); the modify replaces it at ``new_limit``."""
    gw.place(_limit(50.0))
    gw.modify(_limit(new_limit))
    collect(gw.events, lambda s: bool(of(OrderReplaced, s, "t-a")))
    drain(gw.events)


def _bar(sim: SimulatedAlpaca) -> None:
    TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url).get_clock()


def test_lookup_reports_the_fill_of_the_replacement_in_the_session(sim, fresh) -> None:
    gw = _gateway(sim, fresh)
    _place_and_modify(sim, gw, 150.0)
    inject(sim, "silence_trade_stream")  # the replacement's fill update is lost
    _bar(sim)  # the replacement (limit 150) fills
    (fill,) = sim.fills()
    assert fill.client_order_id == "t-a.r1"
    found = gw.lookup(["t-a"])
    assert found["t-a"].status == "filled" and found["t-a"].filled_quantity == 10  # was 'cancelled'
    assert found["t-a"].venue_order_id == fill.order_id
    seen = drain(gw.events)
    (filled,) = of(OrderFilled, seen, "t-a")
    assert filled.exec_id == fill.execution_id and filled.quantity == 10 and filled.cumulative_quantity == 10
    assert not of(OrderCancelled, seen)
    assert gw.lookup(["t-a"])["t-a"].status == "filled" and not drain(gw.events)  # reported once


def test_lookup_after_the_stream_reported_the_fill_reports_it_no_second_time(sim, fresh) -> None:
    gw = _gateway(sim, fresh)
    _place_and_modify(sim, gw, 150.0)
    _bar(sim)
    collect(gw.events, lambda s: bool(of(OrderFilled, s, "t-a")))
    found = gw.lookup(["t-a"])
    assert found["t-a"].status == "filled"
    assert not drain(gw.events)  # the stream's fill is not reported again (nor a cancel)


def test_lookup_after_a_restart_finds_the_replacement_that_filled(sim, fresh) -> None:
    first = _gateway(sim, fresh)
    _place_and_modify(sim, first, 150.0)
    first.close()
    _bar(sim)  # filled while no process listened
    (fill,) = sim.fills()
    restarted = _gateway(sim, fresh)  # nothing in memory: no replacement known
    assert restarted.snapshot().open_orders == []
    drain(restarted.events)
    found = restarted.lookup(["t-a"])
    assert found["t-a"].status == "filled" and found["t-a"].filled_quantity == 10  # was 'cancelled'
    seen = drain(restarted.events)
    (filled,) = of(OrderFilled, seen, "t-a")
    assert filled.exec_id == fill.execution_id and filled.cumulative_quantity == 10
    assert not of(OrderCancelled, seen)


def test_a_working_replacement_is_open_and_ours_after_a_restart(sim, fresh) -> None:
    first = _gateway(sim, fresh)
    _place_and_modify(sim, first, 60.0)  # still below the market: the replacement works
    first.close()
    restarted = _gateway(sim, fresh)
    listed = restarted.snapshot().open_orders
    assert [o.client_order_id for o in listed] == ["t-a"]  # the replacement, under our id (was 't-a.r1')
    found = restarted.lookup(["t-a"])
    assert found["t-a"].status == "open" and found["t-a"].limit_price == 60.0  # was 'cancelled'
    restarted.modify(_limit(70.0))  # a new replacement id: 't-a.r1' is taken (Alpaca refuses 422)
    collect(restarted.events, lambda s: bool(of(OrderReplaced, s, "t-a")))
    restarted.cancel("t-a")  # cancels the current replacement; its update maps to our id
    collect(restarted.events, lambda s: bool(of(OrderCancelled, s, "t-a")))
    assert {o["client_order_id"]: o["status"] for o in _orders(sim)} == {
        "t-a": "replaced", "t-a.r1": "replaced", "t-a.r2": "canceled"}


def _orders(sim: SimulatedAlpaca) -> list[dict]:
    client = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    return [{"client_order_id": o.client_order_id, "status": o.status.value} for o in orders]


def test_an_order_re_priced_at_every_bar_is_still_found_and_does_not_fail_the_others(sim, fresh) -> None:
    """A review probe of 48fc9c8: after 21 modifies the chain was longer than the look-up
    followed (20), so every look-up of the order failed, for good, and with it the look-up of
    every other order asked in the same call. The session starts at the latest order it knows;
    a restart walks the chain (up to 200)."""
    gw = _gateway(sim, fresh)
    gw.place(OrderRequest("t-b", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=40.0))
    gw.place(_limit(50.0))
    gw.cancel("t-b")
    for k in range(21):
        gw.modify(_limit(50.0 + 0.01 * (k + 1)))
        collect(gw.events, lambda s: bool(of(OrderReplaced, s, "t-a")))
    drain(gw.events)
    found = gw.lookup(["t-b", "t-a"])
    assert {cid: o.status for cid, o in found.items()} == {"t-b": "cancelled", "t-a": "open"}
    assert found["t-a"].limit_price == 50.21
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    raw.cancel_order_by_id(raw.get_order_by_client_id("t-a.r21").id)  # ended while nobody runs
    restarted = _gateway(sim, fresh)  # (a restart: nothing in memory)
    assert {cid: o.status for cid, o in restarted.lookup(["t-a"]).items()} == {"t-a": "cancelled"}


def test_a_look_up_after_a_restart_reads_a_long_chain_in_one_listing(sim, fresh) -> None:
    """An order re-priced 50 times, the last replacement filled while no process listened: the
    restarted gateway knows no replacement, so its look-up walked ``replaced_by`` from the first
    order, one GET per replacement (52 requests with the activities read, against Alpaca's 200 a
    minute). One listing of the symbol's orders since the first holds the whole chain."""
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    current = raw.submit_order(LimitOrderRequest(symbol="AAPL", qty=10, side="buy", time_in_force="day",
                                                 limit_price=50.0, client_order_id="t-a"))  # fmt: skip
    for k in range(1, 51):  # as the gateway's modify does: <id>.r<n>, the last one marketable
        price = 150.0 if k == 50 else 50.0 + 0.01 * k
        current = raw.replace_order_by_id(current.id, ReplaceOrderRequest(limit_price=price, client_order_id=f"t-a.r{k}"))
    _bar(sim)  # t-a.r50 fills
    (fill,) = sim.fills()
    assert fill.client_order_id == "t-a.r50"
    restarted = _gateway(sim, fresh)
    drain(restarted.events)
    before = sim.state()["rest_requests"]
    found = restarted.lookup(["t-a"])
    requests = sim.state()["rest_requests"] - before
    assert found["t-a"].status == "filled" and found["t-a"].venue_order_id == fill.order_id
    assert requests <= 3, requests  # by client order id, the listing, the fill's activities (was 52)
    seen = drain(restarted.events)
    (filled,) = of(OrderFilled, seen, "t-a")
    assert filled.exec_id == fill.execution_id and filled.cumulative_quantity == 10
    assert not of(OrderCancelled, seen)


@pytest.fixture
def busy() -> Iterator[SimulatedAlpaca]:
    """A venue without a request limit (the test sends 550 orders in a few seconds)."""
    venue = SimulatedAlpaca(minute_bars(30, {"AAPL": 100.0, "MSFT": 200.0}), rate_limit_per_minute=None)
    venue.start()
    yield venue
    venue.close()


def test_a_long_chain_behind_500_other_orders_on_the_symbol_is_read_from_the_next_page(busy) -> None:
    """Another strategy on the account sent 500 orders on the symbol after ours, then ours was
    re-priced 50 times: the first listing page (500, oldest first) ends before the replacements.
    The walk read the next page; it read each replacement by id (53 requests, was)."""
    sim = busy
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    current = raw.submit_order(LimitOrderRequest(symbol="AAPL", qty=10, side="buy", time_in_force="day",
                                                 limit_price=50.0, client_order_id="t-a"))  # fmt: skip
    for k in range(500):
        raw.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day",
                                           limit_price=1.0, client_order_id=f"x-{k}"))  # fmt: skip
    _bar(sim)  # (the replacements are a minute later: the page's last order is not theirs to share)
    for k in range(1, 51):
        price = 150.0 if k == 50 else 50.0 + 0.01 * k
        current = raw.replace_order_by_id(current.id, ReplaceOrderRequest(limit_price=price, client_order_id=f"t-a.r{k}"))
    _bar(sim)  # t-a.r50 fills
    (fill,) = sim.fills()
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0), is_ours=lambda c: c.startswith("t-"))
    try:
        gw.connect()
        drain(gw.events)
        before = sim.state()["rest_requests"]
        found = gw.lookup(["t-a"])
        requests = sim.state()["rest_requests"] - before
        assert found["t-a"].status == "filled" and found["t-a"].venue_order_id == fill.order_id
        assert requests == 4, requests  # by client order id, two pages, the fill's activities
        (filled,) = of(OrderFilled, drain(gw.events), "t-a")
        assert filled.exec_id == fill.execution_id and filled.cumulative_quantity == 10
    finally:
        gw.close()
