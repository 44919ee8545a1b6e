"""A cut Alpaca answered and then did not carry out (its replacement t-p.r2 canceled: the end kept on
t-p.r1, followed again), then the re-cut's PATCH carried out with its answer and look-up lost, the
stream's updates late, and the next checks' reads of t-p.r1 ``replaced`` with ``replaced_by`` null
(``replaced_by_late``: Alpaca names the replacing order a moment after the status). A read naming
none says neither which replace was carried out: the end kept for t-p.r2 is not reported then; the
read naming t-p.r3 drops it. Failed before (probe pA of rev-cutfix2): OrderCancelled(t-p) at 12
filled while t-p.r3 worked on and bought 8 more. Real alpaca-py against SimulatedAlpaca."""

from __future__ import annotations

from alpaca_helpers import collect, drain
from modify_support import rig

from ml4t_live.events import OrderCancelled, OrderFilled, OrderPartiallyFilled


def test_an_undone_cut_whose_re_cut_is_read_replaced_by_none_named_does_not_end_the_order():
    with rig() as r:
        seen: list = []
        r.reprice_with_slow_replace(bars=2)
        r.sim.inject("slow_replace", bars=1, fail=True)  # the cut: answered, then not carried out
        armed = False
        for _ in range(12):
            r.bar()
            seen += drain(r.gw.events, 0.1)
            if not armed and r.orders().get("t-p.r2", ("",))[0] == "canceled":
                armed = True
                r.sim.inject("replace_error", status=503, count=1, carried_out=True)
                r.sim.inject("lookup_error", status=503, count=8)
                r.sim.inject("delay_trade_updates", count=3, seconds=1.0)
                r.gw.modifier.check_replaces()  # the re-cut: carried out, its answer and look-up lost
                r.sim.inject("replaced_by_late", count=4)
            r.gw.modifier.check_replaces()
        seen += collect(r.gw.events, lambda s: any(isinstance(e, OrderFilled) for e in s), timeout=15.0)
        bought, orders = r.bought(), r.orders()
    assert armed and orders["t-p.r3"][0] == "filled" and bought == 20, orders
    ends = [e for e in seen if isinstance(e, OrderCancelled | OrderFilled)]
    assert [type(e) for e in ends] == [OrderFilled] and ends[0].cumulative_quantity == 20, ends


def test_a_lost_cut_s_replacement_followed_continues_the_chain_s_cumulative_quantity():
    """The re-cut's replacement t-p.r3, followed at a later check (its answer lost), had filled by
    then: the read that follows it reports those fills continuing the chain's cumulative quantity
    (12 filled before it: 15, 18, then 20). Failed before (review rev-cutfix2 finding 4): the read
    came before the follow, t-p.r3's fills counted from 0: 12 -> 3 -> 6 -> 20."""
    with rig() as r:
        seen: list = []
        r.reprice_with_slow_replace(bars=2)
        r.sim.inject("slow_replace", bars=1, fail=True)
        armed = False
        for _ in range(12):
            r.bar()
            seen += drain(r.gw.events, 0.1)
            if not armed and r.orders().get("t-p.r2", ("",))[0] == "canceled":
                armed = True
                r.sim.inject("replace_error", status=503, count=1, carried_out=True)
                r.sim.inject("lookup_error", status=503, count=8)
                r.sim.inject("delay_trade_updates", count=3, seconds=1.0)
                r.gw.modifier.check_replaces()
                r.sim.inject("replaced_by_late", count=8)  # (t-p.r3 fills while its name is late)
            r.gw.modifier.check_replaces()
        seen += collect(r.gw.events, lambda s: any(isinstance(e, OrderFilled) for e in s), timeout=15.0)
    cumulative = [e.cumulative_quantity for e in seen if isinstance(e, OrderPartiallyFilled | OrderFilled)]
    assert armed and cumulative == sorted(cumulative) and cumulative[-1] == 20, cumulative
