"""A restart while a modify's replace is pending: the snapshot lists the old order
(``pending_replace``, not shown ``replaced_by`` yet) and its replacement t-p.r1 (``pending_new``).

Real alpaca-py against the simulated Alpaca (modify_support.py's rig), ``slow_replace``;
the runtime stops (the first gateway closes) and a second gateway connects to the same venue.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from alpaca_helpers import collect, config_for, drain, of
from modify_support import REQUEST, Rig, rig

from ml4t_live.errors import VenueError
from ml4t_live.events import OrderCancelled, OrderPartiallyFilled, VenueErrorReported
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


@contextmanager
def restarted(r: Rig) -> Iterator[AlpacaGateway]:
    """A second gateway (a fresh tracker) on ``r``'s venue, connected, its snapshot taken."""
    r.gw.close()
    gw = AlpacaGateway(config_for(r.sim, order_poll_interval=300.0, max_request_attempts=1),
                       is_ours=lambda c: c.startswith("t-"))  # fmt: skip
    try:
        gw.connect()
        yield gw
    finally:
        gw.close()


def test_the_old_orders_fills_while_away_are_read_through_its_pending_replace():
    """Failed before: the walk from t-p (the old order, ``replaced_by`` not set while the replace
    is pending) could not reach t-p.r1 and raised Unreadable (permanent): the broker gave up at
    once and the 3 the old order filled while away never reached the book. The walk reads the
    old order as the snapshot listed it: read afresh, the 3 it filled after the restart (the
    stream's) would be counted again."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=5)
        r.gw.close()
        r.bar()  # the old order fills 3 more while away
        assert r.orders()["t-p"] == ("pending_replace", "20", "6")
        with restarted(r) as gw:
            gw.holds("t-p", 3.0, 150.0)
            r.bar()  # ... and 3 more after the snapshot, reported by the stream (not while away)
            collect(gw.events, lambda seen: any(
                isinstance(e, OrderPartiallyFilled) and e.cumulative_quantity >= 9 for e in seen))  # fmt: skip
            assert r.orders()["t-p"] == ("pending_replace", "20", "9")
            got = gw.executions_since("t-p", 3.0, 150.0)
            assert [(e.quantity, e.cumulative_quantity) for e in got] == [(3.0, 6.0)]  # up to the listed view
            drain(gw.events)


def test_a_replace_not_carried_out_after_the_restart_is_not_our_orders_end():
    """The replace fails after the restart (AL-14: t-p.r1 ``canceled``, the old order works on).
    Failed before: the old order and t-p.r1 were followed apart (no carry-over), so t-p.r1's
    ``canceled`` was reported OrderCancelled('t-p') while the old order worked on and filled."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=2, fail=True)
        with restarted(r) as gw:
            drain(gw.events)
            r.bar()
            r.bar()  # the replace fails: t-p.r1 canceled, the old order fills on
            seen = collect(gw.events, lambda seen: any(
                isinstance(e, OrderPartiallyFilled) and e.cumulative_quantity >= 9 for e in seen))  # fmt: skip
            assert r.orders()["t-p"][0] == "partially_filled" and r.orders()["t-p.r1"][0] == "canceled"
            assert not of(OrderCancelled, seen, "t-p")
            assert [e.code for e in of(VenueErrorReported, seen, "t-p")] == ["order_replace_rejected"]


def _three_order_chain(r: Rig) -> None:
    """t-p fills 3, is replaced by t-p.r1, which fills 3 more; t-p.r1's replace by t-p.r2 is left
    pending (``slow_replace``) for 5 bars."""
    r.gw.place(REQUEST)
    r.bar(filled_to=3)
    r.gw.modify(replace(REQUEST, limit_price=149.5, filled_quantity=3))
    r.bar(filled_to=6)
    r.sim.inject("slow_replace", bars=5)
    r.gw.modify(replace(REQUEST, client_order_id="t-p", limit_price=149.0, filled_quantity=6))


def _next_fills_cumulative(r: Rig, gw: AlpacaGateway) -> list[float]:
    """The cumulative quantities of t-p's part fills reported for the next bar (t-p.r1 fills 3
    more, its replace still pending)."""
    drain(gw.events)
    r.bar()
    seen = collect(gw.events, lambda seen: bool(of(OrderPartiallyFilled, seen, "t-p")))
    return [e.cumulative_quantity for e in of(OrderPartiallyFilled, seen, "t-p")]


def test_the_superseded_old_order_counts_what_the_orders_before_it_filled():
    """A chain t-p (3 filled) -> t-p.r1 (3 more, its replace by t-p.r2 pending) at the restart.
    Failed before: the walk told the tracker only t-p.r2's base; t-p.r1 kept base 0, so its next
    fill (3 more) was reported with a cumulative quantity of 6 (its own) instead of 9 (the
    chain's), which the book, holding 6, drops as already applied when it has no execution id."""
    with rig(max_request_attempts=1) as r:
        _three_order_chain(r)
        with restarted(r) as gw:
            assert r.orders()["t-p.r1"][0] == "pending_replace" and r.orders()["t-p.r2"][0] == "pending_new"
            gw.holds("t-p", 6.0, 150.0)
            assert gw.executions_since("t-p", 6.0, 150.0) == []
            assert _next_fills_cumulative(r, gw) == [9.0]


def test_the_superseded_old_order_counts_what_the_orders_before_it_filled_when_the_walk_fails():
    """As above, the restart's walk getting no answer (``lookup_error``): only the listed
    replacement was given a base to count from; the old order whose replace is pending kept 0,
    so its next fill (3 more) was reported at 6, not 9, and dropped by the book as applied."""
    with rig(max_request_attempts=1) as r:
        _three_order_chain(r)
        with restarted(r) as gw:
            gw.holds("t-p", 6.0, 150.0)
            r.sim.inject("lookup_error")
            with pytest.raises(VenueError):
                gw.executions_since("t-p", 6.0, 150.0)
            assert _next_fills_cumulative(r, gw) == [9.0]
