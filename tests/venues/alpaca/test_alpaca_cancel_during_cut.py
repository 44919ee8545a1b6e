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
