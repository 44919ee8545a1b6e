"""The view of a listed replacement kept for a read of what it filled while away
(``WhileAway.unread``) is dropped when the broker gives the read up (``forget_away``).

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): t-p of 20
filled 3 and was re-priced, so Alpaca lists t-p.r1 under our id; the walk of its chain gets no
answer (``lookup_error``). Failed before: the gateway had no ``forget_away``; the view stayed.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from modify_support import REQUEST, rig

from ml4t_live.errors import VenueError


def test_a_read_the_broker_gave_up_is_forgotten():
    with rig(max_request_attempts=1) as r:
        r.gw.place(REQUEST)
        r.bar(filled_to=3)
        r.gw.modify(replace(REQUEST, limit_price=149.0, filled_quantity=3))
        r.gw.snapshot()  # lists t-p.r1 as our t-p
        r.sim.inject("lookup_error")
        with pytest.raises(VenueError):
            r.gw.executions_since("t-p", 3, 100.0)
        assert "t-p" in r.gw.away.unread
        r.gw.forget_away("t-p")
        assert "t-p" not in r.gw.away.unread
