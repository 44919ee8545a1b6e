"""``AlpacaGateway.follows_unknown``: the broker's look-ups of an order of unknown outcome leave a
submit to the adapter's own bounded look-ups (:mod:`ml4t_live.venues.alpaca.unknown`) while those
follow it, through the real alpaca-py client against the simulated Alpaca."""

from __future__ import annotations

from alpaca_helpers import collect, config_for, minute_bars, of
from ml4t.backtest import OrderSide

from ml4t_live.events import OrderLost
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_follows_unknown_while_the_adapter_looks_the_submit_up() -> None:
    sim = SimulatedAlpaca(minute_bars(30, {"AAPL": 100.0}), rate_limit_per_minute=None)
    sim.start()
    gw = AlpacaGateway(config_for(sim, order_poll_interval=0.2, unknown_order_lookups=2, request_timeout=1.0),
                       is_ours=lambda cid: cid.startswith("t-"))  # fmt: skip
    try:
        gw.connect()
        gw.place(OrderRequest("t-ok", "AAPL", OrderSide.BUY, 1))
        sim.inject("connection_reset", count=2)  # never taken, and the second attempt is lost too
        gw.place(OrderRequest("t-unknown", "AAPL", OrderSide.BUY, 1))
        assert gw.follows_unknown("t-unknown")  # the adapter's own look-ups own it
        assert not gw.follows_unknown("t-ok")  # Alpaca answered it
        assert not gw.follows_unknown("t-never-placed")
        assert of(OrderLost, collect(gw.events, lambda s: bool(of(OrderLost, s, "t-unknown")), timeout=10.0))
        assert not gw.follows_unknown("t-unknown")  # settled by the adapter: let go
    finally:
        gw.close()
        sim.close()
