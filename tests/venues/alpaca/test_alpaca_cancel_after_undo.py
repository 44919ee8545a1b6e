"""A cancel of our order in the bar its replace was not carried out (AL-14: the replacement
t-p.r1 ``canceled``, the old order works on), before the end-of-bar check: it goes to the old order.

Real alpaca-py against the simulated Alpaca (modify_support.py's rig), ``slow_replace``
with ``fail``.
"""

from __future__ import annotations

from alpaca_helpers import collect, drain, of
from modify_support import rig

from ml4t_live.events import OrderCancelled, OrderPartiallyFilled, VenueErrorReported


def test_a_cancel_after_a_replace_not_carried_out_cancels_the_old_order():
    """Failed before: the gateway's venue id of t-p still pointed at the dead t-p.r1: the DELETE
    was refused 422 (CancelRefused) while the old order worked on and filled."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=1, fail=True)
        drain(r.gw.events)
        r.bar()  # the replace fails: t-p.r1 canceled, the old order fills 3 more
        seen = collect(r.gw.events, lambda seen: bool(of(VenueErrorReported, seen, "t-p")) and any(
            e.cumulative_quantity >= 6 for e in of(OrderPartiallyFilled, seen, "t-p")))  # fmt: skip
        assert [e.code for e in of(VenueErrorReported, seen, "t-p")] == ["order_replace_rejected"]
        r.gw.cancel("t-p")  # the same bar: no end-of-bar check yet
        collect(r.gw.events, lambda seen: bool(of(OrderCancelled, seen, "t-p")))
        assert r.orders()["t-p"][0] == "canceled"
