"""An OCO exit pair of unknown outcome that the trade stream reported, resting after failed walks
(its stop leg not followed yet: its updates are not ours until a walk aliases it), is walked at
once when the trade stream reports an update of an OCO order (its take-profit's, or a leg's not
ours yet): a stop-leg fill reaches the runtime then, not up to 64 ticks of ``order_poll_interval``
later (320 s at the default 5 s), after a reconciliation that would have confirmed a "missing"
position and halted the runtime.

test_alpaca_unknown_oco_leg.py's scenario (real alpaca-py against SimulatedAlpaca; the watcher's
tick called on the stream's loop; the watchdog itself ticks every 300 s, never in the test).
Failed before: the stop leg's fill was never reported while the pair rested (the test's wait for
it timed out).
"""

from __future__ import annotations

from alpaca.trading.client import TradingClient
from alpaca_helpers import collect, drain, inject, of
from unknown_support import ATTEMPTS, unknown_oco

from ml4t_live.events import OrderAccepted, OrderFilled, OrderPartiallyFilled
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_a_resting_oco_pair_is_walked_at_once_when_the_stream_reports_its_stop_leg_filled(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    leg_id = unknown_oco(sim, gw, silent=False, stop=150.0)  # (the stop triggers at the next bar)
    limit = gw.config.unknown_order_lookups
    inject(sim, "lookup_error", count=ATTEMPTS * limit)
    for _ in range(limit):  # walks failing up to the ALERT: the pair rests limit - 1 ticks from it
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
    assert gw.follows_unknown("t-tp") and not of(OrderAccepted, drain(gw.events), "t-sl")
    gw.end_of_bar(None)  # the next bar opens: the stop leg fills, Alpaca cancels the take-profit
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    assert str(raw.get_order_by_id(leg_id).status.value) == "filled"
    seen = collect(gw.events, lambda seen: bool(of(OrderFilled, seen, "t-sl")))  # no tick of the watcher
    fills = [e for e in seen if isinstance(e, OrderFilled | OrderPartiallyFilled)]
    assert [(e.client_order_id, e.quantity) for e in fills if e.client_order_id != "t-entry"] == [("t-sl", 10)]
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-sl")] == [leg_id]
    assert not gw.follows_unknown("t-tp")
