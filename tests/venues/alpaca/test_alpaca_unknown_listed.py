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

from alpaca_helpers import drain, inject, of
from unknown_support import (
    asked_at,
    fill_events,
    rest_reported_once,
    unknown_half_filled,
    unknown_limit,
)

from ml4t_live.events import OrderAccepted, OrderLost
from ml4t_live.sim.alpaca import SimulatedAlpaca


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
