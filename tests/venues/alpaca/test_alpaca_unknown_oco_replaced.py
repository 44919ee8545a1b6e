"""An OCO exit pair of unknown outcome that another client replaced (its take-profit re-priced)
before the watcher found it: the walk reads the replacement by id with its legs (``nested=true``),
so the pair's stop leg is reported accepted with its Alpaca id.

The walk reads a replacement from a listing of the symbol's orders, and by id when the listing
does not hold it; here the listing gets no answer (our REST caller refusing the listing page), so
the replacement is read by id. Alpaca shows an order's legs on that read only when asked
(``nested=true``): without it the replacement comes without its stop leg, and the stop leg is
never reported accepted (the journal has no Alpaca id for it: a warm restart declares it lost).
Real alpaca-py against SimulatedAlpaca (which moves the legs to the replacement).
"""

from __future__ import annotations

from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.requests import ReplaceOrderRequest
from alpaca_helpers import drain, of
from unknown_support import unknown_oco

from ml4t_live.events import OrderAccepted
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway
from ml4t_live.venues.alpaca.rest import RestCaller, VenueRequestFailed


class NoListing:
    """Our REST caller, answering every listing of a walk's replacements as a 503 would."""

    def __init__(self, rest: RestCaller) -> None:
        self.rest = rest

    def __call__(self, what: str, fn: Any, *, repeatable: bool) -> Any:
        if "(replacements, page" in what:
            raise VenueRequestFailed(what, 503, "50300000", "service unavailable")
        return self.rest(what, fn, repeatable=repeatable)


def test_the_stop_leg_of_a_replaced_oco_of_unknown_outcome_is_reported_with_its_alpaca_id(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    leg_id = unknown_oco(sim, gw)
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    take_profit = raw.get_order_by_client_id("t-tp")
    replacement = raw.replace_order_by_id(take_profit.id, ReplaceOrderRequest(limit_price=121.0))
    gw.chains.rest = NoListing(gw.chains.rest)
    gw.stream.session.call(gw.stream.resolve_unconfirmed)
    seen = drain(gw.events)
    assert of(OrderAccepted, seen, "t-tp")
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-sl")] == [leg_id]
    assert not gw.follows_unknown("t-tp") and gw.lookup(["t-tp"])["t-tp"].venue_order_id == str(replacement.id)
