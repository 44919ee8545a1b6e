"""``IBGateway.follows_unknown``: the broker's look-ups of an order of unknown outcome leave an
order to IB's own in-flight checks while those follow it (placed, IB silent), through the real
ib_async client against the simulated gateway."""

from __future__ import annotations

from ib_helpers import is_, wait_for
from ml4t.backtest import OrderSide

from ml4t_live.events import OrderAccepted, OrderLost
from ml4t_live.protocols import OrderRequest

SLOW = {"inflight_check_interval": 0.5, "inflight_checks": 2}  # lost after >= 1 s


def test_follows_unknown_while_the_in_flight_checks_look_the_order_up(sim_factory, gateway_factory, ib_log_guard):
    ib_log_guard.expect(r"order fu-bh \(IB order id \d+\) is LOST")
    ib_log_guard.expect(r"Error 10147, reqId \d+")  # the safety cancel of the lost id
    sim = sim_factory()
    gw = gateway_factory(sim, **SLOW)
    gw.connect()
    gw.place(OrderRequest("fu-ok", "AAPL", OrderSide.BUY, 5))
    wait_for(gw.events, is_(OrderAccepted, "fu-ok"))
    sim.inject("black_hole_next", count=1)
    gw.place(OrderRequest("fu-bh", "AAPL", OrderSide.BUY, 5))
    assert gw.follows_unknown("fu-bh")  # placed, IB silent: the in-flight checks own it
    assert not gw.follows_unknown("fu-ok")  # IB answered it
    assert not gw.follows_unknown("fu-never-placed")  # (e.g. a place the bridge timed out)
    wait_for(gw.events, is_(OrderLost, "fu-bh"), timeout=10)
    assert not gw.follows_unknown("fu-bh")  # settled by the adapter: let go
