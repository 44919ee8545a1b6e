"""The provisional base of a listed replacement whose chain walk fails at a warm restart: what
the book holds less the listed order's own fills the journal holds (``holds_own``), not less what
Alpaca lists it filled. Mutant A of review rev-awayfix2 (``away.py``: the base from Alpaca's
listed ``filled_qty``, the journal's own fills ignored) passed every test.

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): t-p of 20 fills 3, is
re-priced (t-p.r1 asks 17), t-p.r1 fills 3 (the book holds 6, 3 of them t-p.r1's own, as the
journal records them); the gateway closes; t-p.r1 fills 3 while away (Alpaca lists it 6 filled).
A second gateway (the restart) is told the book holds 6, 3 of them t-p.r1's own; its walk of the
chain fails (503); t-p.r1 then fills 3 more (its own 9): the stream reports the chain at 12
(3 + 9), not 9 (6 - 6 + 9: the 3 filled while away lost to the book until a walk succeeds).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from alpaca_helpers import collect, config_for
from modify_support import REQUEST, rig

from ml4t_live.errors import VenueError
from ml4t_live.events import OrderFilled, OrderPartiallyFilled
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_a_fill_while_the_walk_is_unread_counts_on_the_journaled_own_fills_of_the_listed_order():
    with rig(max_request_attempts=1) as r:
        r.gw.place(REQUEST)
        r.bar(filled_to=3)
        r.gw.modify(replace(REQUEST, limit_price=149.5, filled_quantity=3))  # t-p.r1 asks 17
        r.bar(filled_to=6)
        r.gw.close()
        r.bar()  # while away: t-p.r1 fills 3
        assert r.orders()["t-p.r1"] == ("partially_filled", "17", "6"), r.orders()
        gw = AlpacaGateway(config_for(r.sim, order_poll_interval=300.0, max_request_attempts=1),
                           is_ours=lambda c: c.startswith("t-"))  # fmt: skip
        try:
            gw.connect()
            gw.holds("t-p", 6.0, 149.75)
            gw.holds_own("t-p", 3.0)  # (of the book's 6, t-p.r1's own the journal holds)
            r.sim.inject("lookup_error", count=1)
            with pytest.raises(VenueError):
                gw.executions_since("t-p", 6.0, 149.75)
            r.raw.get_clock()  # t-p.r1 fills 3 more
            seen = collect(gw.events, lambda seen: any(isinstance(e, OrderPartiallyFilled | OrderFilled)
                                                       for e in seen))  # fmt: skip
        finally:
            gw.close()
    (fill,) = [e for e in seen if isinstance(e, OrderPartiallyFilled | OrderFilled)]
    assert fill.cumulative_quantity == 12.0, fill
