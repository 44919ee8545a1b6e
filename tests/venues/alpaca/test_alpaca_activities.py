"""Fills the trade stream never delivered are reported under Alpaca's REAL execution ids.

A restart (or a re-sync) learns about such fills from a REST view of the order, which has no
execution ids; the gateway then reads the order's FILL account activities and reports each
execution with its id, price, time and cumulative quantity. Only when the activities cannot be read
does it fall back to a made-up id, with a WARNING. Real alpaca-py against the simulated Alpaca.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from alpaca_helpers import collect, config_for, drain, inject, of
from loguru import logger
from ml4t.backtest import OrderSide

from ml4t_live.events import (
    BrokerReconnected,
    OrderAccepted,
    OrderFilled,
    OrderPartiallyFilled,
)
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def ours(cid: str) -> bool:
    return cid.startswith("t-")


def filled(cid: str):
    return lambda seen: bool(of(OrderFilled, seen, cid))


def fills_of(seen: list) -> list:
    return [e for e in seen if isinstance(e, OrderPartiallyFilled | OrderFilled)]


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING", format="{extra[component]}: {message}")
    yield lines
    logger.remove(sink)


def filled_while_down(sim: SimulatedAlpaca, cid: str, parts: int = 2) -> str:
    """Order ``cid`` (10 AAPL) fills in ``parts`` executions while no gateway runs; its Alpaca id."""
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    inject(sim, "partial_fill", parts=parts)
    order = raw.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side=AlpacaSide.BUY,
                                                time_in_force=TimeInForce.GTC, client_order_id=cid))
    for _ in range(parts):
        raw.get_clock()  # each bar fills one part
    assert len(sim.fills()) == parts
    return str(order.id)


def test_a_restart_reports_fills_made_while_down_under_alpacas_execution_ids(sim):
    order_id = filled_while_down(sim, "t-down")
    gw = AlpacaGateway(config_for(sim), is_ours=ours)
    try:
        gw.connect()
        (found,) = gw.lookup(["t-down"]).values()
        assert found.filled_quantity == 10
        seen = collect(gw.events, filled("t-down"))
        seen += drain(gw.events)
        assert [type(e) for e in seen] == [OrderAccepted, OrderPartiallyFilled, OrderFilled]
        venue = sim.fills()
        got = fills_of(seen)
        assert [f.exec_id for f in got] == [v.execution_id for v in venue]  # the trade updates' ids
        assert [(f.quantity, f.cumulative_quantity) for f in got] == [(5, 5), (5, 10)]
        assert [(f.price, f.timestamp) for f in got] == [(v.price, v.timestamp) for v in venue]
        assert all(f.asset == "AAPL" and f.client_order_id == "t-down" for f in got)
        assert ":" not in got[0].exec_id and order_id not in got[0].exec_id
        assert gw.stream.executions.made_up == 0
        gw.lookup(["t-down"])  # a second view of the same order reports nothing again
        assert drain(gw.events) == []
    finally:
        gw.close()


def test_a_partial_fill_missed_by_a_silent_stream_is_reported_by_the_snapshot_with_its_id(sim, gateway):
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    inject(sim, "partial_fill", parts=2)
    gateway.place(OrderRequest("t-quiet", "AAPL", OrderSide.BUY, 10))
    collect(gateway.events, lambda s: bool(of(OrderAccepted, s, "t-quiet")))
    inject(sim, "silence_trade_stream")
    raw.get_clock()  # half of it fills; the trade update never arrives
    (first,) = sim.fills()
    snap = gateway.snapshot()  # our open order, re-read: its missed execution is reported
    assert [o.filled_quantity for o in snap.open_orders] == [5]
    (partial,) = fills_of(drain(gateway.events))
    assert isinstance(partial, OrderPartiallyFilled)
    assert (partial.exec_id, partial.price, partial.quantity, partial.cumulative_quantity) == (
        first.execution_id, first.price, 5, 5)
    assert drain(gateway.events) == []


def test_a_fill_missed_while_the_stream_was_down_is_recovered_by_the_resync_with_its_id(sim, gateway):
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    gateway.place(OrderRequest("t-gap", "AAPL", OrderSide.BUY, 3))
    collect(gateway.events, lambda s: bool(of(OrderAccepted, s, "t-gap")))
    inject(sim, "silence_trade_stream")
    raw.get_clock()  # it fills; the update is lost on the silent socket
    (venue,) = sim.fills()
    inject(sim, "drop_trade_stream")  # alpaca-py reconnects; the re-sync reads our order over REST
    seen = collect(gateway.events, lambda s: bool(of(BrokerReconnected, s)) and filled("t-gap")(s))
    seen += drain(gateway.events)
    (fill,) = fills_of(seen)
    assert (fill.exec_id, fill.price, fill.quantity, fill.cumulative_quantity) == (venue.execution_id, venue.price, 3, 3)


def test_activities_answering_an_error_once_are_retried(sim):
    filled_while_down(sim, "t-retry")
    gw = AlpacaGateway(config_for(sim), is_ours=ours)
    try:
        gw.connect()
        sim.fail_activities(1, status=503)
        gw.lookup(["t-retry"])
        got = fills_of(collect(gw.events, filled("t-retry")))
        assert [f.exec_id for f in got] == [v.execution_id for v in sim.fills()]
        assert gw.rest.retried >= 1 and gw.stream.executions.made_up == 0
    finally:
        gw.close()


def test_unreadable_activities_fall_back_to_a_made_up_id_with_a_warning_never_a_lost_fill(sim, warnings):
    order_id = filled_while_down(sim, "t-blind")
    gw = AlpacaGateway(config_for(sim, max_request_attempts=2), is_ours=ours)
    try:
        gw.connect()
        sim.fail_activities(2, status=503)  # every bounded attempt
        gw.lookup(["t-blind"])
        seen = collect(gw.events, filled("t-blind"))
        (fill,) = fills_of(seen)  # the whole missed quantity, once
        assert (fill.exec_id, fill.quantity, fill.cumulative_quantity) == (f"{order_id}:10", 10, 10)
        assert fill.price == pytest.approx(sum(v.price * v.qty for v in sim.fills()) / 10)
        assert gw.stream.executions.made_up == 1
        assert any("cannot read the executions" in w and order_id in w for w in warnings)
        assert any("made-up execution id" in w and f"{order_id}:10" in w for w in warnings)
    finally:
        gw.close()
