"""A walk that found the order proves it exists: a submit of unknown
outcome is never declared lost for a later read of the walk that fails; a warm restart's walk
never reads its listed chain end again.

An OCO pair of unknown outcome (t-tp / t-sl) replaced by another client: the walk's first read
finds the take-profit, the listing answers, and the read by id of the replacement with its legs
(the chain's last multi-leg order) fails after every retry at each tick: 503, or a 200 alpaca-py
cannot read. Failed before: OrderLost for t-tp and t-sl after ``unknown_order_lookups`` ticks
while Alpaca worked the pair. A simple submit of unknown outcome whose read by client order id
Alpaca answers 200 with a body that is not an order, at every tick: failed before, OrderLost while
it rested at Alpaca. A warm restart's walk of a re-priced OCO take-profit listed working, whose
read by id fails: failed before, executions_since raised on a read whose result it discarded.
Real alpaca-py against SimulatedAlpaca.
"""

from __future__ import annotations

from dataclasses import replace as dc_replace

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import ReplaceOrderRequest
from alpaca_helpers import collect, config_for, drain, inject, of
from ml4t.backtest import OrderSide, OrderType
from unknown_support import ATTEMPTS, unknown_oco

from ml4t_live.events import OrderAccepted, OrderFilled, OrderLost
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def _ticks(gw: AlpacaGateway, n: int) -> list:
    seen: list = []
    for _ in range(n):
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        seen += drain(gw.events)
    return seen


@pytest.mark.parametrize("status", [503, 200])
def test_an_oco_pair_whose_replacement_cannot_be_read_is_never_lost(
    sim: SimulatedAlpaca, gw: AlpacaGateway, status: int
) -> None:
    unknown_oco(sim, gw)
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    take_profit = raw.get_order_by_client_id("t-tp")
    replacement = raw.replace_order_by_id(take_profit.id, ReplaceOrderRequest(limit_price=121.0))
    inject(sim, "order_read_error", order_id=str(replacement.id), count=100 * ATTEMPTS, status=status)
    seen = _ticks(gw, 2 * gw.stream.unknown.limit)
    assert not of(OrderLost, seen)
    assert gw.follows_unknown("t-tp")  # (still of unknown outcome: looked up again, less often)
    assert gw.stream.unknown.known_misses("t-tp") >= 1  # (its failed walks counted as one known to exist)
    assert str(replacement.id) in {str(o.id) for o in raw.get_orders()}  # (Alpaca works the pair)


def test_a_submit_whose_read_answers_a_body_that_cannot_be_read_is_never_lost(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    inject(sim, "silence_trade_stream")
    inject(sim, "truncated_body")  # Alpaca takes t-u, its answer is cut
    inject(sim, "lookup_error", count=ATTEMPTS)  # its first look-up: no answer
    gw.place(OrderRequest("t-u", "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=50.0))
    assert gw.follows_unknown("t-u")
    inject(sim, "lookup_error", count=ATTEMPTS * 3 * gw.stream.unknown.limit, status=200)
    seen = _ticks(gw, 2 * gw.stream.unknown.limit)
    assert not of(OrderLost, seen)
    assert gw.follows_unknown("t-u")
    assert gw.stream.unknown.known_misses("t-u") == 0  # (no misses, and not taken as existing either)


def test_a_restart_walk_never_reads_its_listed_chain_end_again(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    gw.place(OrderRequest("t-entry", "AAPL", OrderSide.BUY, 10))
    gw.end_of_bar(None)
    collect(gw.events, lambda seen: bool(of(OrderFilled, seen, "t-entry")))
    tp = OrderRequest("t-tp", "AAPL", OrderSide.SELL, 10, OrderType.LIMIT, limit_price=120.0, oca_group="g")
    gw.place(tp)
    gw.place(OrderRequest("t-sl", "AAPL", OrderSide.SELL, 10, OrderType.STOP, stop_price=90.0, oca_group="g"))
    collect(gw.events, lambda seen: bool(of(OrderAccepted, seen, "t-tp")))
    gw.modify(dc_replace(tp, limit_price=121.0))
    drain(gw.events)
    gw.close()
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    r1 = raw.get_order_by_client_id("t-tp.r1")
    assert r1.order_class.value == "oco" and r1.status.value == "new"
    gw2 = AlpacaGateway(config_for(sim, order_poll_interval=300.0), is_ours=lambda c: c.startswith("t-"))
    gw2.connect()
    try:
        gw2.holds("t-tp", 0.0, None)
        inject(sim, "order_read_error", order_id=str(r1.id), count=100 * ATTEMPTS)
        assert gw2.executions_since("t-tp", 0.0, None) == []
    finally:
        gw2.close()
