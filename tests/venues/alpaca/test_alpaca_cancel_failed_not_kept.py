"""The strategy cancels its order while its modify's replace is pending, and the DELETE gets no
answer (503 on every retry): the cancel raises (VenueRequestFailed, the strategy told it failed),
so nothing of it is kept: the chain settles, is checked (the replacement cut down by what the old
order filled meanwhile) and works on; no cancel the strategy was told failed is carried out
later. Failed before (probe p2 of rev-cutfix3): the cancel was kept before the DELETE was sent,
and once the check ended it cancelled the replacement. Real alpaca-py against SimulatedAlpaca."""

from __future__ import annotations

import pytest
from modify_support import rig

from ml4t_live.venues.alpaca.rest import VenueRequestFailed


def test_a_cancel_that_got_no_answer_is_not_kept_for_after_the_check():
    with rig(bars=60) as r:
        r.reprice_with_slow_replace(bars=2, quantity=60)
        r.sim.inject("cancel_error", status=503, count=4)  # (the DELETE and its 3 retries)
        with pytest.raises(VenueRequestFailed):
            r.gw.cancel("t-p")
        kept = set(r.gw.modifier.cancels)
        for _ in range(5):
            r.bar()
            r.gw.modifier.check_replaces()
        orders, checks = r.orders(), dict(r.gw.modifier._replace_checks)
    assert checks == {} and not any(status == "canceled" for status, _, _ in orders.values()), (orders, checks)
    assert orders["t-p"][0] == "replaced" and any(s == "partially_filled" for s, _, _ in orders.values()), orders
    assert kept == set(), kept
