"""A replacement's end taken as a replace not carried out (AL-14), then the old order shown
``replaced`` after all: the replacement's end is our order's.

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): ``slow_replace``
leaves the replace pending one bar, ``silence_trade_stream`` loses the old order's ``replaced``,
``drop_trade_stream`` makes alpaca-py reconnect (the re-sync reads only the replacement, t-p.r1).
"""

from __future__ import annotations

from alpaca_helpers import collect, drain, of
from modify_support import rig

from ml4t_live.events import BrokerReconnected, OrderCancelled, VenueErrorReported


def test_our_cancel_of_the_replacement_after_a_lost_replaced_update_ends_our_order():
    """Failed before: t-p.r1's ``canceled`` (our cancel) was taken as AL-14 (the old order followed
    again); the end-of-bar check then read the old order ``replaced`` and the tracker took it as
    finished quietly: OrderCancelled('t-p') was never reported and the book kept t-p working."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=1)  # pending: checked later
        drain(r.gw.events)
        r.sim.inject("silence_trade_stream")
        r.bar()  # the replace is carried out: t-p replaced, t-p.r1 works (both updates lost)
        r.sim.inject("drop_trade_stream")
        collect(r.gw.events, lambda seen: bool(of(BrokerReconnected, seen)), timeout=15)
        r.gw.cancel("t-p")  # in the same bar, before the end-of-bar check
        seen = collect(r.gw.events, lambda seen: bool(of(VenueErrorReported, seen, "t-p")))
        assert [e.code for e in of(VenueErrorReported, seen, "t-p")] == ["order_replace_rejected"]
        assert not of(OrderCancelled, seen, "t-p")  # (not known yet: the old order may work on)
        r.gw.modifier.check_replaces()  # the end of bar: the old order is read, replaced
        seen = collect(r.gw.events, lambda seen: bool(of(OrderCancelled, seen, "t-p")))
        assert r.orders()["t-p"][0] == "replaced" and r.orders()["t-p.r1"][0] == "canceled"
        assert r.gw.tracker.outcome("t-p") == "closed"
