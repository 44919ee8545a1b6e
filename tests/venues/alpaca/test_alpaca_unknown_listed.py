"""A submit of unknown outcome that a listing of open orders (the reconciliation's snapshot) showed,
while its look-up by client order id gets no answer (``lookup_error``: only
``GET /v2/orders:by_client_order_id`` fails).

The listing proves the order exists: the watcher never declares it lost, and reads it by the
Alpaca id the listing showed (``GET /v2/orders/{id}``), so it is reported with everything it
filled, each fill once. Before, each no-answer look-up counted as a miss and the order, working
at Alpaca, was declared LOST after ``unknown_order_lookups`` ticks; its fills while unknown were
never counted (5 of 10). Through the real alpaca-py client against SimulatedAlpaca (trade stream
silent); the watcher's ticks are run on its loop thread.
"""

from __future__ import annotations

from alpaca.trading.client import TradingClient
from alpaca.trading.requests import ReplaceOrderRequest
from alpaca_helpers import config_for, drain, inject, of
from ml4t.backtest import OrderSide, OrderType
from runtime_support import filling_sim
from unknown_support import (
    asked_at,
    fill_events,
    rest_reported_once,
    unknown_half_filled,
    unknown_limit,
)

from ml4t_live.events import OrderAccepted, OrderLost
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_a_listed_submit_whose_look_up_gets_no_answer_is_read_by_its_listed_id(sim: SimulatedAlpaca) -> None:
    gw = unknown_limit(sim, 50.0, max_request_attempts=1)
    try:
        drain(gw.events)
        inject(sim, "lookup_error", count=1000)  # GET by_client_order_id: 503 from now on
        (listed,) = gw.snapshot().open_orders
        assert listed.client_order_id == "t-a" and gw.follows_unknown("t-a")
        for _ in range(gw.stream.unknown.limit):
            gw.stream.session.call(gw.stream.resolve_unconfirmed)
        seen = drain(gw.events)
        assert not of(OrderLost, seen, "t-a")  # before: LOST while Alpaca works it
        (accepted,) = of(OrderAccepted, seen, "t-a")
        (at_alpaca,) = [o for o in sim.orders() if o["client_order_id"] == "t-a"]
        assert (accepted.venue_order_id, at_alpaca["status"]) == (at_alpaca["id"], "new")
        assert not gw.follows_unknown("t-a")
    finally:
        gw.close()


def test_a_listed_submit_whose_look_up_gets_no_answer_has_all_its_fills_counted_once(sim: SimulatedAlpaca) -> None:
    """t-u (market 10) filled 5 while of unknown outcome; a listing shows it, its look-up by
    client order id gets no answer. Before: declared LOST, the next listing adopted it (its 5 so
    far taken as reported), only the last 5 reached the runtime."""
    gw = unknown_half_filled(sim, max_request_attempts=1)
    try:
        seen = drain(gw.events)
        inject(sim, "lookup_error", count=1000)  # GET by_client_order_id: 503 from now on
        gw.snapshot()
        for _ in range(gw.stream.unknown.limit):
            gw.stream.session.call(gw.stream.resolve_unconfirmed)
        gw.snapshot()  # the next reconciliation's listing
        seen += drain(gw.events)
        assert [f.quantity for f in fill_events(seen)] == [5]  # before: [] (LOST, then adopted)
        seen = rest_reported_once(sim, gw, seen)  # 10 in all, each once
        assert len(of(OrderAccepted, seen, "t-u")) == 1
    finally:
        gw.close()


def test_a_listed_submit_that_cannot_be_read_at_all_rests_between_look_ups(sim: SimulatedAlpaca) -> None:
    """Neither look-up answers (by client order id nor by the listed id): never lost, and it is
    looked up ever less often, as an order whose report fails. Failed before: LOST at the 3rd.
    """
    gw = unknown_limit(sim, 50.0, max_request_attempts=1, unknown_order_lookups=3)
    try:
        drain(gw.events)
        inject(sim, "lookup_error", count=1000)
        gw.snapshot()
        (venue_id,) = [o["id"] for o in sim.orders() if o["client_order_id"] == "t-a"]
        inject(sim, "order_read_error", count=1000, order_id=venue_id)  # GET /v2/orders/{id}: 503 too
        # misses 1-2 every tick; from the 3rd (limit) every 3rd tick; from the 6th doubling
        assert asked_at(sim, gw, 18) == [1, 2, 3, 6, 9, 12, 18]
        assert not of(OrderLost, drain(gw.events)) and gw.follows_unknown("t-a")
    finally:
        gw.close()


def test_a_listed_replacement_of_an_unknown_submit_does_not_lose_the_first_orders_fills() -> None:
    """A review probe of 89954b6: the submit t-a (of unknown outcome) filled 3, was replaced
    elsewhere by t-a.r1, which filled 3; a listing shows only t-a.r1 while the look-up by client
    order id gets no answer. The walk must start at t-a, whose fills count too: the listed id is
    a replacement's, not the one to read from (a mutant taking it: 3 of the 6 reported)."""
    sim = filling_sim(12)
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, max_request_attempts=1),
                       is_ours=lambda c: c.startswith("t-"))  # fmt: skip
    try:
        gw.connect()
        inject(sim, "silence_trade_stream")
        inject(sim, "truncated_body")
        inject(sim, "lookup_error", count=1)
        gw.place(OrderRequest("t-a", "AAPL", OrderSide.BUY, 20, OrderType.LIMIT, limit_price=150.0))
        assert gw.follows_unknown("t-a")
        raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
        raw.get_clock()  # a bar: t-a fills 3
        first = raw.get_order_by_client_id("t-a")
        assert float(first.filled_qty) == 3
        r1 = raw.replace_order_by_id(first.id, ReplaceOrderRequest(qty=17, client_order_id="t-a.r1"))
        raw.get_clock()  # a bar: t-a.r1 fills 3
        drain(gw.events)
        inject(sim, "lookup_error", count=3)  # by client order id: the snapshot's and 2 watcher ticks
        (listed,) = gw.snapshot().open_orders  # t-a.r1, under our id
        assert listed.venue_order_id == str(r1.id)
        for _ in range(4):
            gw.stream.session.call(gw.stream.resolve_unconfirmed)
        seen = drain(gw.events)
        reported = [f.quantity for f in fill_events(seen)]
        assert not of(OrderLost, seen)
        assert sum(reported) == sum(v.qty for v in sim.fills()) == 6, reported
    finally:
        gw.close()
        sim.close()
