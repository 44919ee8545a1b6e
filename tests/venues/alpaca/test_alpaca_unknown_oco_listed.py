"""An OCO exit pair of unknown outcome that a listing of open orders (the reconciliation's snapshot)
showed, while its look-up by client order id gets no answer (``lookup_error``: only
``GET /v2/orders:by_client_order_id`` fails).

The listing proves the pair exists: the watcher reads it by the Alpaca id the listing showed
(``GET /v2/orders/{id}``), asking for its legs (``nested=true``: Alpaca rolls an OCO pair's legs up
under it only then), so its stop leg is reported accepted with its Alpaca id (the journal keeps
that id: a restart finds the leg by it). Before, an OCO pair's listed id was not used (the look-up
by client order id was taken as the only read known to show its legs): the pair stayed of unknown
outcome for as long as that look-up got no answer, and its stop leg was not followed (its updates
taken as foreign). Real alpaca-py against SimulatedAlpaca (trade stream silent); the watcher's
ticks are run on its loop thread.
"""

from __future__ import annotations

from alpaca_helpers import drain, inject, of
from unknown_support import unknown_oco

from ml4t_live.events import OrderAccepted, OrderLost
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_a_listed_oco_whose_look_up_gets_no_answer_is_read_by_its_listed_id_with_its_legs(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    leg_id = unknown_oco(sim, gw)
    inject(sim, "lookup_error", count=1000)  # GET by_client_order_id: 503 from now on
    listed = {o.client_order_id: o.venue_order_id for o in gw.snapshot().open_orders}
    assert gw.follows_unknown("t-tp") and leg_id in listed.values()  # the pair and its stop leg
    gw.stream.session.call(gw.stream.resolve_unconfirmed)
    seen = drain(gw.events)
    assert not of(OrderLost, seen)
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-tp")] == [listed["t-tp"]]
    # its stop leg, from the pair's legs read by id: without them t-sl is never accepted
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-sl")] == [leg_id]
    assert not gw.follows_unknown("t-tp")
