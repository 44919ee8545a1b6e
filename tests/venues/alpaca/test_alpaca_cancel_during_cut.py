"""The strategy cancels its order while the runtime's own cut of it is pending (the replacement
t-p.r2 ``pending_new``, its DELETE refused 422) and Alpaca then does not carry the cut out (AL-14:
t-p.r2 canceled, t-p.r1 working on). The cancel is taken and kept: the check cuts no more, it
cancels t-p.r1, the order the chain settled on; t-p ends cancelled with one OrderCancelled, having
bought what it had when the strategy cancelled and what t-p.r1 filled while Alpaca kept the cut
pending (refusing any cancel of it meanwhile). Failed before (probe p8 of
rev-cut): the cancel refused (CancelRefused 'pending_new'), never sent again, and the check cut
t-p.r1 again: t-p.r3 made and filled, 20 bought of an order the strategy cancelled at 9. Real
alpaca-py against SimulatedAlpaca."""

from __future__ import annotations

from alpaca_helpers import collect
from modify_support import rig

from ml4t_live.events import OrderCancelled, OrderFilled, OrderPartiallyFilled


def test_a_cancel_while_the_runtime_s_cut_is_pending_is_sent_to_the_order_the_chain_settles_on():
    with rig() as r:
        r.reprice_with_slow_replace(bars=2)
        r.sim.inject("slow_replace", bars=2, fail=True)  # the cut: pending 2 bars, then not carried out
        r.bar()
        r.gw.modifier.check_replaces()
        r.bar()
        r.gw.modifier.check_replaces()  # the cut sent: t-p.r2 pending_new
        at_cancel = r.orders()
        r.gw.cancel("t-p")  # taken: no CancelRefused
        for _ in range(8):
            r.bar()
            r.gw.modifier.check_replaces()
        seen = collect(r.gw.events, lambda s: any(isinstance(e, OrderCancelled | OrderFilled) for e in s))
        bought, orders = r.bought(), r.orders()
    assert at_cancel["t-p.r2"][0] == "pending_new", at_cancel
    assert "t-p.r3" not in orders and orders["t-p.r1"][0] == "canceled", orders
    ends = [e for e in seen if isinstance(e, OrderCancelled | OrderFilled)]
    assert [type(e) for e in ends] == [OrderCancelled], ends
    filled = sum(float(f) for _, _, f in at_cancel.values())
    # (t-p.r1 fills on while Alpaca keeps the cut pending 2 bars, refusing its cancel meanwhile)
    assert filled == 9 and bought == filled + 6 < 20, (bought, at_cancel)
    reported = sum(e.quantity for e in seen if isinstance(e, OrderPartiallyFilled))
    assert reported == bought - 3, seen  # (the first 3 read by reprice_with_slow_replace)


def test_a_cancel_while_the_strategy_s_replace_is_pending_is_sent_once_alpaca_does_not_carry_it_out():
    """The strategy's own modify pending (t-p.r1 ``pending_new``, the cancel refused 422), then not
    carried out: t-p works on with its old terms, and the kept cancel goes to it once the check
    ends. Failed before: CancelRefused, t-p worked on and filled 20."""
    with rig() as r:
        r.reprice_with_slow_replace(bars=2, fail=True)
        r.gw.cancel("t-p")  # taken: no CancelRefused
        for _ in range(6):
            r.bar()
            r.gw.modifier.check_replaces()
        seen = collect(r.gw.events, lambda s: any(isinstance(e, OrderCancelled | OrderFilled) for e in s))
        bought, orders, lines = r.bought(), r.orders(), r.lines
    assert orders["t-p"][0] == "canceled" and orders["t-p.r1"][0] == "canceled", orders
    assert bought < 20, bought
    assert [type(e) for e in seen if isinstance(e, OrderCancelled | OrderFilled)] == [OrderCancelled], seen
    assert any("the one its chain settled on" in line for line in lines), lines


def test_a_cancel_refused_pending_replace_while_a_lost_cut_is_pending_is_taken():
    """The runtime's cut answered 503 yet carried out and left pending (its look-up failing too:
    t-p.r2 not followed, our order still t-p.r1, ``pending_replace``); the strategy cancels: Alpaca
    refuses it 'pending_replace', a replace in flight, so the cancel is taken and kept; once the cut
    is carried out and followed, the chain is cancelled, nothing left working. (Probe p3 of
    rev-cutfix3: the only test that fails with ``CHANGING`` = ("pending_new",), CancelRefused.)"""
    with rig(bars=60) as r:
        r.reprice_with_slow_replace(bars=2, quantity=60)
        r.sim.inject("slow_replace", bars=2)  # the cut: pending 2 bars, then carried out
        r.sim.inject("replace_error", status=503, carried_out=True)
        r.sim.inject("lookup_error", status=503, count=8)
        r.bar()
        r.gw.modifier.check_replaces()
        r.bar()
        r.gw.modifier.check_replaces()  # the cut: 503, carried out, pending
        at_cancel = r.orders()
        r.gw.cancel("t-p")  # taken: no CancelRefused
        for _ in range(6):
            r.bar()
            r.gw.modifier.check_replaces()
        orders, kept, lines = r.orders(), set(r.gw.modifier.cancels), r.lines
    assert at_cancel["t-p.r1"][0] == "pending_replace", at_cancel
    assert any('already in "pending_replace" state' in line for line in lines), lines
    working = ("new", "accepted", "pending_new", "partially_filled", "pending_replace")
    assert not any(status in working for status, _, _ in orders.values()) and kept == set(), (orders, kept)
