"""An OCO exit pair whose one submit gets no request slot: both members end rejected.

The pair goes out as one Alpaca ``oco`` order when its second member is placed; the first is
held until then. A submit that is not sent (``RateLimitTimeout``: no request slot within
``request_timeout``, a VenueError) raises out of the second member's ``place()`` (the runtime
rejects that one) and the first is reported ``OrderRejected``. Before, only ``OrderRefused`` did
that: the take-profit stayed PENDING forever, never sent. Real alpaca-py against SimulatedAlpaca.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alpaca_helpers import drain, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderRejected
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway
from ml4t_live.venues.alpaca.rate_limit import RateLimitTimeout

BURST = 20


@pytest.fixture
def gw(connect_gateway: Callable[..., AlpacaGateway]) -> AlpacaGateway:
    return connect_gateway(max_requests_per_minute=1, rate_limit_burst=BURST, request_timeout=0.5)


def test_an_oco_pair_whose_submit_gets_no_slot_rejects_both_members(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    gw.place(OrderRequest("t-tp", "AAPL", OrderSide.SELL, 10, OrderType.LIMIT, limit_price=120.0, oca_group="g"))
    while gw.bucket.try_acquire():  # no request slot left
        pass
    with pytest.raises(RateLimitTimeout):
        gw.place(OrderRequest("t-sl", "AAPL", OrderSide.SELL, 10, OrderType.STOP, stop_price=90.0, oca_group="g"))
    assert sim.orders() == []  # nothing sent
    assert [e.code for e in of(OrderRejected, drain(gw.events), "t-tp")] == ["refused"]
