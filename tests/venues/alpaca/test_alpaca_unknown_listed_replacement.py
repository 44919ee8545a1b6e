"""A submit of unknown outcome of which a listing of open orders (the reconciliation's snapshot)
showed only its first replacement ``<cid>.r1``, while its look-up by client order id gets no
answer (``lookup_error``).

The walk must start at the order under our id, whose fills count too: the listed replacement's
own id is not the one to read from (test_alpaca_unknown_listed.py), but the id it ``replaces``
is that order's, so the watcher reads it by that id (``GET /v2/orders/{id}``) and walks on. Before,
such an order was looked up only by client order id: while that got no answer, neither it nor
what it filled was reported. When what ``<cid>.r1`` replaces is not the order under our id (a
replacement made elsewhere in between), the walk does not start there but looks the order up by
client order id. Real alpaca-py against SimulatedAlpaca (trade stream silent); the watcher's ticks
are run on its loop thread.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import ReplaceOrderRequest
from alpaca_helpers import config_for, drain, inject, of
from ml4t.backtest import OrderSide, OrderType
from runtime_support import filling_sim
from unknown_support import fill_events

from ml4t_live.events import OrderAccepted, OrderLost
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


@pytest.fixture
def filling() -> Iterator[SimulatedAlpaca]:
    sim = filling_sim(12)
    yield sim
    sim.close()


def _replaced_elsewhere(sim: SimulatedAlpaca, *through: str) -> AlpacaGateway:
    """A gateway whose t-a (limit 20) is of unknown outcome; t-a filled 3, then was replaced
    elsewhere by each of ``through`` in turn, each filling 3 (the last is listed open)."""
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, max_request_attempts=1),
                       is_ours=lambda c: c.startswith("t-"))  # fmt: skip
    gw.connect()
    inject(sim, "silence_trade_stream")
    inject(sim, "truncated_body")
    inject(sim, "lookup_error", count=1)
    gw.place(OrderRequest("t-a", "AAPL", OrderSide.BUY, 20, OrderType.LIMIT, limit_price=150.0))
    assert gw.follows_unknown("t-a")
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    raw.get_clock()  # a bar: t-a fills 3
    current = raw.get_order_by_client_id("t-a")
    for n, cid in enumerate(through, start=1):
        current = raw.replace_order_by_id(current.id, ReplaceOrderRequest(qty=20 - 3 * n, client_order_id=cid))
        raw.get_clock()  # a bar: the replacement fills 3
    drain(gw.events)
    return gw


def test_a_listed_first_replacement_is_walked_from_the_order_it_replaces(filling: SimulatedAlpaca) -> None:
    gw = _replaced_elsewhere(filling, "t-a.r1")
    try:
        inject(filling, "lookup_error", count=1000)  # by client order id: never answered again
        (listed,) = gw.snapshot().open_orders  # t-a.r1, under our id
        assert listed.client_order_id == "t-a"
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        seen = drain(gw.events)
        assert not of(OrderLost, seen) and len(of(OrderAccepted, seen, "t-a")) == 1
        reported = [f.quantity for f in fill_events(seen)]
        assert sum(reported) == sum(v.qty for v in filling.fills()) == 6, reported  # before: [] (unread)
        assert not gw.follows_unknown("t-a")
    finally:
        gw.close()


def test_a_listed_first_replacement_of_another_replacement_is_walked_from_our_order(filling: SimulatedAlpaca) -> None:
    """t-a replaced by x-1 (not ours), x-1 by t-a.r1: what t-a.r1 replaces is x-1, not t-a. A walk
    started there (a mutant without the check) reports 3 of the 9 filled."""
    gw = _replaced_elsewhere(filling, "x-1", "t-a.r1")
    try:
        inject(filling, "lookup_error", count=1)  # the snapshot's look-up by client order id
        gw.snapshot()
        assert gw.follows_unknown("t-a")
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        seen = drain(gw.events)
        reported = [f.quantity for f in fill_events(seen)]
        assert sum(reported) == sum(v.qty for v in filling.fills()) == 9, reported
        assert not of(OrderLost, seen) and not gw.follows_unknown("t-a")
    finally:
        gw.close()
