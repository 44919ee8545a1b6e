"""A replace's check that finds the old order still open just after the PATCH (modify.Modifier).

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): ``slow_replace``
with ``stale_old`` answers the PATCH with the replacement ``pending_new`` while a GET of the old
order still shows it as before the PATCH (``partially_filled``), not ``pending_replace``: a window
the references do not rule out. That is a replace not carried out YET (its replacement has not
ended): the check is kept and the runtime's order stays the replacement.
Failed before: the check concluded "Alpaca did not carry out the replace" (AL-14) from the old
order's status alone, dropped the check and pointed the order back at the old Alpaca order: a
second modify was PATCHed to the old order (422 "pending_replace"), the old order's late fill was
never cut from r1 (r1 asked 17 on top of t-p's 6: 23 for 20) and a cancel went to the replaced
order (422 "replaced").
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from alpaca.trading.enums import OrderStatus
from alpaca_helpers import collect, of
from modify_support import REQUEST, rig

from ml4t_live.events import OrderCancelled
from ml4t_live.venues.alpaca.submit import OrderRefused


def test_stale_old_shows_the_old_order_as_before_the_patch_while_the_replace_is_pending():
    with rig() as r:
        r.reprice_with_slow_replace(bars=2, stale_old=True)
        old_id, new_id = r.venue_id("t-p"), r.venue_id("t-p.r1")
        assert r.orders()["t-p"][0] == "pending_replace"  # (the venue's own record)
        assert r.raw.get_order_by_id(old_id).status is OrderStatus.PARTIALLY_FILLED  # (its GET)
        assert r.raw.get_order_by_id(new_id).status is OrderStatus.PENDING_NEW
        r.bar()
        r.bar()  # carried out
        assert r.raw.get_order_by_id(old_id).status is OrderStatus.REPLACED


def test_an_old_order_still_shown_open_after_the_patch_keeps_the_check():
    """The replace stays pending 2 bars, its old order's GET stale; t-p fills 3 more meanwhile.
    The checks just after the PATCH and at the next end of bar keep the check (r1 is pending_new,
    not ended); once carried out (r1 of 17 fills 3 at that bar) the check cuts r1 down to the 11
    left: 20 bought in all."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=2, stale_old=True)  # its check: the first try
        with pytest.raises(OrderRefused, match="not checked yet"):  # (the check is kept)
            r.gw.modify(replace(REQUEST, limit_price=148.0, filled_quantity=3))
        r.bar(filled_to=6)  # t-p fills 3 more while the replace is pending
        r.gw.modifier.check_replaces()  # still stale: kept again
        r.bar()  # carried out: r1 of 17 works (and fills 3 at this bar)
        r.gw.modifier.check_replaces()  # t-p replaced with 6 filled, r1 with 3: r1 is cut down
        assert [form.qty for _, form in r.sim.replaces_received()] == [17, 11]
        for _ in range(8):
            r.bar()
        r.bar(filled_to=20)
        assert r.bought() == 20
        assert not any("did not carry out" in line for line in r.lines), r.lines
        assert any("is not carried out yet" in line for line in r.logged("INFO")), r.lines


def test_a_cancel_after_a_stale_check_goes_to_the_replacement():
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=1, stale_old=True)
        r.bar()  # carried out before the bar is matched: r1 works
        r.gw.modifier.check_replaces()
        r.gw.cancel("t-p")
        collect(r.gw.events, lambda seen: bool(of(OrderCancelled, seen, "t-p")))
        assert r.orders()["t-p.r1"][0] == "canceled" and r.orders()["t-p"][0] == "replaced"
