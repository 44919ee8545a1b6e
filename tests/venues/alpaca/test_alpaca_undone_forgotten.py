"""The tracker's note of a replace answered then not carried out (AL-14: the replacement's end
taken as such, the old order followed again; ``OrderTracker.replacements_undone``) is kept while
the old order works and dropped once it has ended (cancelled, or filled).

Real alpaca-py against the simulated Alpaca (modify_support.py's rig), ``slow_replace`` with
``fail``. Failed before: the note stayed for the whole session, one more per AL-14.
"""

from __future__ import annotations

from dataclasses import replace

from alpaca_helpers import collect, drain, of
from modify_support import REQUEST, Rig, rig

from ml4t_live.events import OrderCancelled, OrderFilled, VenueErrorReported


def _replace_not_carried_out(r: Rig, limit_price: float) -> str:
    """t-p re-priced to ``limit_price``, the replace answered and then not carried out at the next
    bar (its replacement ``canceled``, t-p works on); the replacement's Alpaca id."""
    n = len(r.sim.replaces_received()) + 1
    r.sim.inject("slow_replace", bars=1, fail=True)
    r.gw.modify(replace(REQUEST, limit_price=limit_price, filled_quantity=r.bought()))
    drain(r.gw.events)
    r.bar()
    collect(r.gw.events, lambda seen: bool(of(VenueErrorReported, seen, "t-p")))
    assert r.orders()[f"t-p.r{n}"][0] == "canceled" and r.orders()["t-p"][0] == "partially_filled"
    r.gw.modifier.check_replaces()
    return r.venue_id(f"t-p.r{n}")


def test_the_note_of_a_replace_not_carried_out_is_dropped_when_the_order_is_cancelled():
    with rig(max_request_attempts=1) as r:
        r.gw.place(REQUEST)
        r.bar(filled_to=3)
        undone = _replace_not_carried_out(r, 149.0)
        assert r.gw.tracker.replacements_undone() == [undone]  # (t-p works on: it may still matter)
        r.gw.cancel("t-p")
        collect(r.gw.events, lambda seen: bool(of(OrderCancelled, seen, "t-p")))
        assert r.gw.tracker.replacements_undone() == []


def test_the_notes_of_replaces_not_carried_out_are_dropped_when_the_order_fills():
    with rig(max_request_attempts=1) as r:
        r.gw.place(REQUEST)
        r.bar(filled_to=3)
        first = _replace_not_carried_out(r, 149.0)
        second = _replace_not_carried_out(r, 148.0)
        assert sorted(r.gw.tracker.replacements_undone()) == sorted([first, second])
        while r.bought() < REQUEST.quantity:
            r.bar()
        collect(r.gw.events, lambda seen: bool(of(OrderFilled, seen, "t-p")))
        assert r.gw.tracker.replacements_undone() == []
