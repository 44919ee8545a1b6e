"""The strategy's cancel, with no replace check pending, refused 'replaced': a lost cut of t-p's
replacement (t-p.r1 cut to t-p.r2 by a PATCH answered 503 yet carried out) whose check gave up
before Alpaca carried it out; the runtime still names t-p.r1 (no stream update of the lost cut
moved it). The cancel goes to t-p.r1, Alpaca refuses it 'replaced'; t-p.r1 is read, t-p.r2 (its
``replaced_by``) followed and the cancel sent to it. Failed before (probe rev-last p1): the cancel
raised CancelRefused(ended='replaced') and nothing moved the followed id, so every later cancel went
to t-p.r1 (refused 40 of 40 bars) while t-p.r2 filled: 81 bought of 60. Real alpaca-py against
SimulatedAlpaca."""

from __future__ import annotations

import pytest
from alpaca.trading.requests import ReplaceOrderRequest
from modify_support import REQUEST, rig
from unknown_support import ATTEMPTS

from ml4t_live.errors import CancelRefused
from ml4t_live.venues.alpaca.modify import MAX_TRIES


def _cut_lost_and_given_up(r) -> None:
    """t-p.r1 cut to t-p.r2 by a PATCH answered 503 yet carried out once its check gave up."""
    r.reprice_with_slow_replace(bars=2, quantity=60)
    r.sim.inject("slow_replace", bars=MAX_TRIES + 3)  # the cut: pending past the check's tries, then carried out
    r.sim.inject("replace_error", status=503, carried_out=True)
    r.sim.inject("lookup_error", status=503, count=8)
    r.bar()
    r.gw.modifier.check_replaces()
    r.bar()
    r.gw.modifier.check_replaces()  # the cut: 503, carried out, pending
    for _ in range(MAX_TRIES + 5):  # the check gives up; the cut is carried out
        r.bar()
        r.gw.modifier.check_replaces()
    assert "t-p" not in r.gw.modifier._replace_checks and r.orders()["t-p.r1"][0] == "replaced"


def test_a_cancel_refused_replaced_with_no_check_pending_follows_the_replacement_and_cancels_it():
    with rig(bars=60) as r:
        _cut_lost_and_given_up(r)
        r.gw.cancel("t-p")  # no check pending: refused 'replaced' by t-p.r1, followed to t-p.r2 (raised before)
        for _ in range(20):
            r.bar()
            r.gw.modifier.check_replaces()
        orders, bought = r.orders(), r.bought()
        r2 = next(str(o["id"]) for o in r.sim.orders() if o["client_order_id"] == "t-p.r2")
        followed = r.gw._venue_ids["t-p"]
    assert orders["t-p.r2"][0] == "canceled" and bought < 60, (orders, bought)
    assert followed == r2


def test_a_cancel_refused_replaced_whose_order_cannot_be_read_is_refused_and_the_next_one_follows():
    """t-p.r1 cannot be read when the cancel is refused 'replaced': nothing to follow, the refusal
    raised as it is (the runtime sends its cancel again), t-p.r1 still named; the next cancel,
    t-p.r1 readable again, follows t-p.r2 and cancels it."""
    with rig(bars=60) as r:
        _cut_lost_and_given_up(r)
        r1 = r.gw._venue_ids["t-p"]
        r.sim.inject("order_read_error", order_id=r1, status=503, count=ATTEMPTS)  # the read of t-p.r1: 503 after every retry
        with pytest.raises(CancelRefused) as refused:
            r.gw.cancel("t-p")
        still = r.gw._venue_ids["t-p"]
        r.gw.cancel("t-p")  # t-p.r1 readable: followed to t-p.r2, cancelled
        for _ in range(20):
            r.bar()
            r.gw.modifier.check_replaces()
        orders, bought = r.orders(), r.bought()
        r2 = next(str(o["id"]) for o in r.sim.orders() if o["client_order_id"] == "t-p.r2")
        followed = r.gw._venue_ids["t-p"]
    assert refused.value.ended == "replaced" and still == r1
    assert orders["t-p.r2"][0] == "canceled" and bought < 60, (orders, bought)
    assert followed == r2


def test_a_cancel_refused_replaced_by_another_client_s_order_leaves_that_order_alone():
    """Review rev-final: t-p replaced at Alpaca by another client (the dashboard, another tool: its
    own client order id); the strategy's cancel is refused 'replaced', and the replacement is not
    ours: not followed (its fills never taken as t-p's) nor cancelled, the refusal raised, one
    ALERT. Failed before (7ee1b2b): the other client's order was cancelled and its fills reported
    as t-p's (27 of 20)."""
    with rig(bars=60) as r:
        r.gw.place(REQUEST)
        r.bar(filled_to=3)
        r.raw.replace_order_by_id(r.venue_id("t-p"), ReplaceOrderRequest(qty=40, client_order_id="z-foreign"))
        r.bar()
        with pytest.raises(CancelRefused) as refused:
            r.gw.cancel("t-p")
        assert refused.value.ended == "replaced"
        assert r.orders()["z-foreign"][0] != "canceled"
        assert len([line for line in r.logged("ERROR") if "an order another client made" in line]) == 1
