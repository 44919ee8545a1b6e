"""A snapshot (reconciliation, cancel checks) that lists a submit of unknown outcome settles it.

The submit's answer is cut and its look-up gets no answer, so the outcome is unknown and the
stream's watcher (``OrderStream.resolve_unconfirmed``) follows it; the trade stream is silent.
Through the real alpaca-py client against SimulatedAlpaca.
"""

from __future__ import annotations

from alpaca_helpers import drain, of
from unknown_support import fill_events, rest_reported_once, unknown_half_filled

from ml4t_live.events import OrderAccepted
from ml4t_live.sim.alpaca import SimulatedAlpaca


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
