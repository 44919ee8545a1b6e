"""A replace's check whose old order stays open without being ``replaced`` (modify.Modifier).

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): ``slow_replace``
leaves the old order ``pending_replace`` for many bars, or (``fail``) answers the PATCH and then
does not carry the replace out (AL-14): the old order works on with its old terms.
Failed before: such a check was stored again with no try counted: never an ALERT, and every later
modify of the order was refused ("the last replace ... is not checked yet"), silently, for good.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from alpaca_helpers import collect, drain, of
from modify_support import REQUEST, rig

from ml4t_live.events import OrderCancelled, OrderPartiallyFilled, VenueErrorReported
from ml4t_live.venues.alpaca.modify import MAX_TRIES
from ml4t_live.venues.alpaca.submit import OrderRefused


def test_a_replace_pending_for_long_is_given_up_with_one_alert():
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=MAX_TRIES + 5)  # (its check: the first try)
        for _ in range(MAX_TRIES):
            r.gw.modifier.check_replaces()
        alerts = [line for line in r.logged("ERROR") if line.startswith("ERROR ALERT")]
        assert len(alerts) == 1 and "t-p" in alerts[0] and "pending" in alerts[0], r.lines
        reads = len([line for line in r.lines if "is pending: checked again" in line])
        r.gw.modifier.check_replaces()  # given up: not read again
        assert len([line for line in r.lines if "is pending: checked again" in line]) == reads
        assert len(alerts) == len([line for line in r.logged("ERROR") if line.startswith("ERROR ALERT")])


def test_a_replace_answered_then_not_carried_out_points_back_at_the_old_order():
    with rig(max_request_attempts=1) as r:
        r.gw.place(REQUEST)
        r.bar(filled_to=3)
        old_id = r.venue_id("t-p")
        r.sim.inject("slow_replace", bars=1, fail=True)
        r.gw.modify(replace(REQUEST, limit_price=149.0, filled_quantity=3))
        with pytest.raises(OrderRefused, match="not checked yet"):
            r.gw.modify(replace(REQUEST, limit_price=148.0, filled_quantity=3))
        r.bar()  # the replace fails: t-p works on, t-p.r1 canceled
        assert r.orders()["t-p.r1"][0] == "canceled" and r.orders()["t-p"][0] in ("new", "partially_filled")
        r.gw.modifier.check_replaces()
        r.gw.modify(replace(REQUEST, limit_price=148.0, filled_quantity=r.bought()))  # not refused
        ((patched, second),) = r.sim.replaces_received()[1:]
        assert patched == old_id and second.limit_price == 148.0  # the PATCH went to the order that works
        assert any(line.startswith("WARNING Alpaca did not carry out the replace") for line in r.lines), r.lines


def test_the_end_of_a_replacement_whose_replace_was_not_carried_out_is_not_our_orders_end():
    """The replace fails after its PATCH was answered: Alpaca ends t-p.r1 ``canceled`` while t-p
    works on (and fills). Our order is not cancelled (an ``order_replace_rejected`` report
    instead); its later fills and its own cancel are reported as t-p's.
    Failed before: r1's ``canceled`` was reported as ``OrderCancelled('t-p')`` while t-p worked on."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=1, fail=True)
        drain(r.gw.events)
        r.bar()  # the replace fails (before the bar is matched); t-p fills 3 more at that bar
        seen = collect(r.gw.events, lambda seen: any(e.cumulative_quantity >= 6 for e in of(
            OrderPartiallyFilled, seen, "t-p")))  # fmt: skip
        assert [e.code for e in of(VenueErrorReported, seen, "t-p")] == ["order_replace_rejected"]
        assert not of(OrderCancelled, seen, "t-p")
        r.gw.modifier.check_replaces()
        r.gw.cancel("t-p")
        collect(r.gw.events, lambda seen: bool(of(OrderCancelled, seen, "t-p")))
        assert r.orders()["t-p"][0] == "canceled" and r.bought() == 6
