"""A snapshot taken while a replace is pending lists both orders of ours: the old one
(``pending_replace``) and its replacement (``pending_new``). Our order is the replacement: a
cancel after the replace is carried out goes to it.

Real alpaca-py against the simulated Alpaca (modify_support.py's rig), ``slow_replace``.
Failed before: Alpaca lists newest first, so the old order was adopted last and the gateway's
venue id of t-p moved back onto it: the cancel was refused 422 (the old order ``replaced``) and
t-p.r1 kept working until the next reconciliation.
"""

from __future__ import annotations

from modify_support import rig


def test_a_cancel_after_a_snapshot_during_a_pending_replace_cancels_the_replacement():
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=2)
        listed = [o.client_order_id for o in r.gw.snapshot().open_orders]
        assert listed == ["t-p", "t-p"]  # both, under our id
        r.bar()
        r.bar()  # the replace is carried out: t-p.r1 works
        assert r.orders()["t-p"][0] == "replaced" and r.orders()["t-p.r1"][0] in ("new", "partially_filled")
        r.gw.cancel("t-p")
        assert r.orders()["t-p.r1"][0] == "canceled"
