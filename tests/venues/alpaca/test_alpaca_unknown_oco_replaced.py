"""An OCO exit pair of unknown outcome that another client replaced (its take-profit re-priced)
before the watcher found it: the walk reads the replacement with its legs, so the pair's stop
leg is reported accepted with its Alpaca id.

The walk reads a replacement from a listing of the symbol's orders, and by id (``nested=true``)
when the listing does not hold it or shows a multi-leg order without its legs (the chain's last:
the listing does not ask for legs); here the listing answers (the usual case), or is answered 503
after every retry (the simulator's ``listing_error``). Alpaca shows an order's legs only when
asked: without them the stop leg is never reported accepted (the journal has no Alpaca id for
it: a warm restart declares it lost). Failed before with the listing answering (the replacement
taken from the listing, without legs: no OrderAccepted for t-sl). Real alpaca-py against
SimulatedAlpaca (which moves the legs to the replacement).
"""

from __future__ import annotations

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import ReplaceOrderRequest
from alpaca_helpers import drain, inject, of
from unknown_support import ATTEMPTS, unknown_oco

from ml4t_live.events import OrderAccepted
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


@pytest.mark.parametrize("listing", ["answered", "refused"])
def test_the_stop_leg_of_a_replaced_oco_of_unknown_outcome_is_reported_with_its_alpaca_id(
    sim: SimulatedAlpaca, gw: AlpacaGateway, listing: str
) -> None:
    leg_id = unknown_oco(sim, gw)
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    take_profit = raw.get_order_by_client_id("t-tp")
    replacement = raw.replace_order_by_id(take_profit.id, ReplaceOrderRequest(limit_price=121.0))
    if listing == "refused":
        inject(sim, "listing_error", count=ATTEMPTS)  # (the walk's listing: 503 after every retry)
    gw.stream.session.call(gw.stream.resolve_unconfirmed)
    seen = drain(gw.events)
    assert of(OrderAccepted, seen, "t-tp")
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-sl")] == [leg_id]
    assert raw.get_orders()  # (the listing answers again: the walk's listing took every 503)
    assert not gw.follows_unknown("t-tp") and gw.lookup(["t-tp"])["t-tp"].venue_order_id == str(replacement.id)
