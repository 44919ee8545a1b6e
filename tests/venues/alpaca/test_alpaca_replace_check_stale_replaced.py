"""A replace's check that reads the old order open after the stream showed it ``replaced``
(modify.Modifier._not_replaced), its replacement ended meanwhile.

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): the replace is
left pending one bar (``slow_replace``), so its check is kept; at that bar Alpaca carries it out
(the stream shows t-p ``replaced``, t-p.r1 works and fills 3), then another client of the account
cancels t-p.r1 (the stream: our order cancelled). The check's GET of t-p lags the replace
(``stale_replaced_read``: ``partially_filled``). The replace was carried out: t-p.r1's end is our
order's end, and our order stays t-p.r1.
"""

from __future__ import annotations

import pytest
from alpaca_helpers import collect, of
from modify_support import rig

from ml4t_live.errors import CancelRefused
from ml4t_live.events import OrderCancelled


def test_a_stale_read_of_an_old_order_shown_replaced_does_not_point_our_order_back_at_it():
    """Failed before: the check took it for a replace not carried out (AL-14): a WARNING said the
    strategy's change did not take effect and our id pointed at t-p again, so a later cancel went
    to the replaced t-p (422 "replaced") instead of our order's t-p.r1."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=1)  # pending: the check kept
        r.bar(filled_to=6)  # carried out (the stream: t-p replaced), t-p.r1 fills 3
        r.raw.cancel_order_by_id(r.venue_id("t-p.r1"))  # another client of the account
        collect(r.gw.events, lambda seen: bool(of(OrderCancelled, seen, "t-p")))  # our order's end
        r.sim.inject("stale_replaced_read")
        r.gw.modifier.check_replaces()  # t-p read partially_filled, t-p.r1 canceled
        assert not any("did not carry out" in line for line in r.lines), r.lines
        assert any("a read lagging the trade stream" in line for line in r.logged("INFO")), r.lines
        with pytest.raises(CancelRefused, match='"canceled" state'):  # t-p.r1, not t-p ("replaced")
            r.gw.cancel("t-p")
        assert r.orders()["t-p"] == ("replaced", "20", "3") and r.orders()["t-p.r1"][0] == "canceled"
