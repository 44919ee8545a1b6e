"""A replaced order read at a warm restart before Alpaca names its replacement (``replaced_by``
null, status ``replaced``, the ``replaced_by_late`` fault): the chain is "not read yet", a
VenueError the broker reads again at its next reconciliations within the bounded reads
(``AWAY_READS``, :mod:`ml4t_live.restart_reads`), never ``Unreadable`` (permanent, given up at
once with the ALERT).

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): t-p of 20 filled 3, was
re-priced (t-p.r1 filled 3 more) and re-priced again (t-p.r2 listed working); a second gateway
(the restart) reads the chain.
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
    """A second gateway (a fresh tracker) on ``r``'s venue, connected, its snapshot taken."""
    r.gw.close()
    gw = AlpacaGateway(config_for(r.sim, order_poll_interval=300.0, max_request_attempts=1),
                       is_ours=lambda c: c.startswith("t-"))  # fmt: skip
    try:
        gw.connect()
        yield gw
    finally:
        gw.close()


def _three_order_chain(r: Rig) -> None:
    """t-p fills 3, is replaced by t-p.r1, which fills 3 more and is replaced by t-p.r2."""
    r.gw.place(REQUEST)
    r.bar(filled_to=3)
    r.gw.modify(replace(REQUEST, limit_price=149.5, filled_quantity=3))
    r.bar(filled_to=6)
    r.gw.modify(replace(REQUEST, limit_price=149.0, filled_quantity=6))


def test_a_replacement_not_named_yet_is_read_again_not_given_up():
    """Failed before: the walk from t-p (``replaced``, ``replaced_by`` null) raised Unreadable,
    ``permanent``: the broker gave the read up at once with the ALERT, though Alpaca names the
    replacement a moment later."""
    with rig(max_request_attempts=1) as r:
        _three_order_chain(r)
        r.gw.close()
        r.bar()  # t-p.r2 fills 3 while away
        assert r.orders()["t-p.r2"][0] == "partially_filled"
        with restarted(r) as gw:
            gw.holds("t-p", 6.0, 150.0)
            r.sim.inject("replaced_by_late")  # the walk's read of t-p (by our client order id)
            with pytest.raises(VenueError) as unread:
                gw.executions_since("t-p", 6.0, 150.0)
            assert not getattr(unread.value, "permanent", False), unread.value
            assert "names no replacement yet" in str(unread.value)
            got = gw.executions_since("t-p", 6.0, 150.0)  # the next reconciliation: Alpaca names it now
            assert [(e.quantity, e.cumulative_quantity) for e in got] == [(3.0, 9.0)]
            drain(gw.events)
