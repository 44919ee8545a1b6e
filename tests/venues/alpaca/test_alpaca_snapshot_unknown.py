"""A snapshot (reconciliation, cancel checks) that lists a submit of unknown outcome settles it.

The submit's answer is cut and its look-up gets no answer, so the outcome is unknown and the
stream's watcher (``OrderStream.resolve_unconfirmed``) follows it; the trade stream is silent.
Through the real alpaca-py client against SimulatedAlpaca.
"""

from __future__ import annotations

from typing import Any

from alpaca_helpers import config_for, drain, inject, of
from ml4t.backtest import OrderSide

from ml4t_live.events import OrderAccepted, OrderFilled, OrderLost, OrderPartiallyFilled
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

ATTEMPTS = 4  # max_request_attempts (AlpacaConfig default): what one look-up retries


def fill_events(seen: list) -> list:
    return [e for e in seen if isinstance(e, OrderPartiallyFilled | OrderFilled)]


def unknown_half_filled(sim: SimulatedAlpaca, **config: Any) -> AlpacaGateway:
    """A connected gateway whose t-u (market 10, filled over two bars) is of unknown outcome, 5 of
    its 10 filled and not reported (the trade stream silent)."""
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, **config), is_ours=lambda c: c.startswith("t-"))
    gw.connect()
    inject(sim, "silence_trade_stream")  # none of t-u's updates arrive
    inject(sim, "truncated_body")  # Alpaca takes t-u, the answer is cut
    inject(sim, "lookup_error", count=ATTEMPTS)  # and its look-up gets no answer
    inject(sim, "partial_fill", parts=2)
    gw.place(OrderRequest("t-u", "AAPL", OrderSide.BUY, 10))
    assert gw.follows_unknown("t-u")
    gw.rest("clock", gw._require().get_clock, repeatable=True)  # a bar: 5 of 10 fill
    assert len(sim.fills()) == 1
    return gw



def rest_reported_once(sim: SimulatedAlpaca, gw: AlpacaGateway, seen: list) -> list:
    """The rest of t-u fills and the silent stream's watchdog reports it: with what was ``seen``,
    10 in all, each once, under the venue's execution ids, nothing lost. Returns all seen."""
    gw.rest("clock", gw._require().get_clock, repeatable=True)  # the rest fills
    assert gw.stream.session.call(gw.stream.resync) > 0  # the silent stream's watchdog
    seen = seen + drain(gw.events)
    fills = fill_events(seen)
    assert [(f.exec_id, f.quantity, f.cumulative_quantity) for f in fills] == [
        (v.execution_id, 5, c) for v, c in zip(sim.fills(), (5, 10), strict=True)]
    assert isinstance(fills[-1], OrderFilled) and not of(OrderLost, seen)
    return seen


def test_a_snapshot_that_lists_an_unknown_submit_reports_what_it_filled_once(sim: SimulatedAlpaca) -> None:
    """t-u (market 10, its fill split over two bars) is of unknown outcome; half fills, the stream
    says nothing, then a reconciliation's snapshot lists it. The snapshot settles it through the
    watcher's path: accepted and its first 5 reported (under the venue's execution id), the rest
    when it fills; 10 in all, each once. Before, the snapshot adopted it as an order found on
    connect (what it had filled taken as known): no OrderAccepted, the first 5 never reported,
    and the watcher then settled it quietly."""
    gw = unknown_half_filled(sim)
    try:
        first, = sim.fills()
        snap = gw.snapshot()  # a reconciliation, before the watcher's tick
        assert [(o.client_order_id, o.filled_quantity) for o in snap.open_orders] == [("t-u", 5)]
        seen = drain(gw.events)
        assert len(of(OrderAccepted, seen, "t-u")) == 1
        (partial,) = fill_events(seen)
        assert (partial.exec_id, partial.quantity, partial.cumulative_quantity) == (first.execution_id, 5, 5)
        assert not gw.follows_unknown("t-u")
        gw.stream.session.call(gw.stream.resolve_unconfirmed)  # the watcher's tick: nothing left
        seen = rest_reported_once(sim, gw, seen)
        assert gw.stream.session.call(gw.stream.resync) == 0 and not drain(gw.events)  # reported once
    finally:
        gw.close()
