"""A warm restart's walk of a replace chain whose read of an earlier order lags (the simulator's
``stale_client_id_read``: ``GET /v2/orders:by_client_order_id`` answering the order as before its
last fill and, or, its replace). What the chain's earlier orders filled is the base the listed
order's fills count on: read too low, what the listed order filled while away is never reported
and the next modify asks the shortfall again (more bought than the book's order).

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): t-p of 20 fills 3 and is
re-priced (t-p.r1 asks 17), the gateway closes, t-p.r1 fills 3 while away; a second gateway (the
restart) reads the chain with the book holding 3, then re-prices with what the book holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from alpaca_helpers import config_for, drain
from modify_support import REQUEST, Rig, rig

from ml4t_live.errors import VenueError
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


@contextmanager
def restarted(r: Rig) -> Iterator[AlpacaGateway]:
    """t-p filled 3 and re-priced, then t-p.r1 fills 3 while away: a second gateway (a fresh
    tracker) on ``r``'s venue, connected, its snapshot taken, told the book holds 3."""
    r.gw.place(REQUEST)
    r.bar(filled_to=3)
    r.gw.modify(replace(REQUEST, limit_price=149.5, filled_quantity=3))  # t-p.r1 asks 17
    r.gw.close()
    r.bar()  # while away: t-p.r1 fills 3
    assert r.orders()["t-p.r1"] == ("partially_filled", "17", "3"), r.orders()
    gw = AlpacaGateway(config_for(r.sim, order_poll_interval=300.0, max_request_attempts=1),
                       is_ours=lambda c: c.startswith("t-"))  # fmt: skip
    try:
        gw.connect()
        gw.holds("t-p", 3.0, 150.0)
        yield gw
    finally:
        gw.close()


def _reprice_and_fill(r: Rig, gw: AlpacaGateway, book: float) -> None:
    """The strategy re-prices with what the book holds (``book``); the bars fill what is asked."""
    drain(gw.events)
    gw.modify(replace(REQUEST, limit_price=149.0, filled_quantity=book))
    for _ in range(6):
        r.bar()


def test_a_lookup_lagging_the_fills_of_a_replaced_order_still_counts_them():
    """t-p read ``replaced`` (naming t-p.r1) but with none of its 3 filled. Failed before: the
    base was 0, t-p.r1's 3 filled while away were never reported (nothing read), the modify asked
    17 again: 23 bought of 20. Now the replaced order's FILL activities count: 3 at 6."""
    with rig(max_request_attempts=1) as r, restarted(r) as gw:
        r.sim.inject("stale_client_id_read", replace=False)
        got = gw.executions_since("t-p", 3.0, 150.0)
        assert [(e.quantity, e.cumulative_quantity) for e in got] == [(3.0, 6.0)]
        _reprice_and_fill(r, gw, 6.0)
        assert r.orders()["t-p.r2"][1] == "14", r.orders()
        assert r.bought() == 20.0, r.orders()


def test_a_lookup_lagging_the_replace_is_read_again_not_taken_as_a_replace_pending():
    """t-p read as before its fill and its replace (``new``, nothing filled, no ``replaced_by``),
    though the snapshot did not list it beside t-p.r1. Failed before: taken as a replace pending,
    its stale 0 the base: nothing reported, 23 bought of 20. Now a read lagging its replace, read
    again later (not permanent); the next read reports t-p.r1's 3 at 6."""
    with rig(max_request_attempts=1) as r, restarted(r) as gw:
        r.sim.inject("stale_client_id_read")
        with pytest.raises(VenueError) as unread:
            gw.executions_since("t-p", 3.0, 150.0)
        assert not getattr(unread.value, "permanent", False), unread.value
        assert "read again later" in str(unread.value), unread.value
        got = gw.executions_since("t-p", 3.0, 150.0)  # the next reconciliation: a fresh read
        assert [(e.quantity, e.cumulative_quantity) for e in got] == [(3.0, 6.0)]
        _reprice_and_fill(r, gw, 6.0)
        assert r.orders()["t-p.r2"][1] == "14", r.orders()
        assert r.bought() == 20.0, r.orders()
