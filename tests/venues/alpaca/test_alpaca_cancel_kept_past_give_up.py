"""The strategy cancels its order while its modify's replace is pending (t-p.r1 ``pending_new``,
the DELETE refused 422, the cancel kept); Alpaca keeps the replace pending longer than the check's
MAX_TRIES, then does not carry it out (AL-14: t-p.r1 canceled, t-p working on). The check gives up
with an ALERT that says the cancel is kept; the kept cancel, refused 'pending_new' while the replace
is in flight, is sent again at each check, and cancels t-p once the chain settles on it. Failed
before (probe p1 of rev-cutfix3): the refusal 'pending_new' after the give-up was taken as the
order's end, the cancel thrown away; t-p worked on and filled 45 of 60 while the strategy had it
cancelled. Real alpaca-py against SimulatedAlpaca (an order of 60, not filled up meanwhile)."""

from __future__ import annotations

from alpaca_helpers import collect
from modify_support import rig

from ml4t_live.events import OrderCancelled, OrderFilled
from ml4t_live.venues.alpaca.modify import MAX_TRIES


def test_a_kept_cancel_outlives_the_check_s_give_up_and_cancels_the_order_the_chain_settles_on():
    with rig(bars=60) as r:
        r.reprice_with_slow_replace(bars=MAX_TRIES + 3, quantity=60, fail=True)
        r.gw.cancel("t-p")  # taken: refused 'pending_new', kept
        for _ in range(MAX_TRIES + 6):
            r.bar()
            r.gw.modifier.check_replaces()
        seen = collect(r.gw.events, lambda s: any(isinstance(e, OrderCancelled | OrderFilled) for e in s))
        orders, bought, lines, kept = r.orders(), r.bought(), r.lines, set(r.gw.modifier.cancels)
    assert orders["t-p"][0] == "canceled" and orders["t-p.r1"][0] == "canceled", orders
    assert bought < 60 and kept == set(), (bought, kept)
    assert [type(e) for e in seen if isinstance(e, OrderCancelled | OrderFilled)] == [OrderCancelled], seen
    alerts = [line for line in lines if "ALERT" in line and "t-p" in line]
    assert len(alerts) == 1 and "the strategy's cancel of it is kept" in alerts[0], alerts
    assert any('the order pending_new (a replace in flight): sent again' in line for line in lines), lines


def test_a_kept_cancel_refused_by_an_ended_replacement_the_stream_has_not_shown_goes_to_the_old_order():
    """The same, the trade stream 2 s behind: the kept cancel reaches t-p.r1 once Alpaca has
    cancelled it (the replace not carried out) before the stream shows that end. The refusal
    'canceled' is not taken as our order's end: t-p.r1 is read (its end reported: a replace not
    carried out, t-p followed again) and the cancel sent to t-p. Failed before (1 run in 3 of the
    test above, as the stream raced the cancel): the cancel dropped, t-p working on."""
    with rig(bars=60) as r:
        r.reprice_with_slow_replace(bars=MAX_TRIES + 3, quantity=60, fail=True)
        r.gw.cancel("t-p")
        r.sim.inject("delay_trade_updates", seconds=2.0, count=1)  # (and every update behind it)
        for _ in range(MAX_TRIES + 6):
            r.bar()
            r.gw.modifier.check_replaces()
        orders, kept = r.orders(), set(r.gw.modifier.cancels)
        seen = collect(r.gw.events, lambda s: any(isinstance(e, OrderCancelled | OrderFilled) for e in s))
        bought = r.bought()
    assert orders["t-p"][0] == "canceled" and orders["t-p.r1"][0] == "canceled", orders
    assert kept == set() and bought < 60, (kept, bought)
    assert [type(e) for e in seen if isinstance(e, OrderCancelled | OrderFilled)] == [OrderCancelled], seen
