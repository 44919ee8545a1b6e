"""A submit of unknown outcome found by a listing, a cancel or a modify whose report raises.

The report's exception came out of ``gateway.snapshot()``, ``cancel()`` and ``modify()`` as it was
(here a RuntimeError), not as a VenueError: the broker's reconciliation and cancel checks catch
only VenueError / BridgeError, so a reconciliation's snapshot ended the run. Now a listing goes on
(the order listed as it is, still of unknown outcome), and a modify is refused as one of an
order being reported (``BeingReported``, a VenueError, nothing sent; a cancel is sent all the
same: test_alpaca_unknown_cancel.py); either way the failure
is counted as the watcher's are (``unknown_report_failed``, the next look-up spaced by it) and
the order is reported once its report works again. Real alpaca-py against SimulatedAlpaca, the
trade stream silent.
"""

from __future__ import annotations

import pytest
from alpaca_helpers import drain, of
from unknown_support import (
    BreakingReader,
    limit,
    looked_up_at,
    replaced_unknown,
    unknown_limit,
)

from ml4t_live.events import OrderAccepted, OrderLost, VenueErrorReported
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.unknown import BeingReported


def test_a_listing_whose_report_raises_after_the_back_off_is_taken_with_the_order_unknown(
    sim: SimulatedAlpaca,
) -> None:
    """The reviewer's case: t-a (replaced by t-a.r1, open) failed its report 6 times (the watcher
    backs off: next look-up in 6 ticks); a reconciliation's snapshot lists it and its report
    raises again. Failed before: the snapshot raised the RuntimeError. Now it returns, t-a listed
    open, still of unknown outcome, the 7th failure counted (the watcher's next look-up 12 ticks
    on), and that look-up reports it once the report works."""
    gw, _ = replaced_unknown(sim, unknown_order_lookups=3)
    try:
        reader = gw.stream.executions = BreakingReader(gw.stream.executions)
        drain(gw.events)
        assert looked_up_at(gw, reader, 12) == [1, 2, 3, 6, 9, 12]
        snap = gw.snapshot()
        assert reader.reads == 7  # the snapshot tried to report it
        assert [o.client_order_id for o in snap.open_orders] == ["t-a"]
        seen = drain(gw.events)
        assert [e.code for e in of(VenueErrorReported, seen, "t-a")] == ["unknown_report_failed"] * 7
        assert not of(OrderAccepted, seen, "t-a") and not of(OrderLost, seen, "t-a")
        assert gw.follows_unknown("t-a")
        reader.broken = False
        assert looked_up_at(gw, reader, 12) == [12]  # spaced by the snapshot's failure (the 7th: 12 ticks)
        seen = drain(gw.events)
        assert len(of(OrderAccepted, seen, "t-a")) == 1 and not of(OrderLost, seen, "t-a")
        assert not gw.follows_unknown("t-a")
    finally:
        gw.close()


def test_a_modify_whose_report_raises_is_refused_as_being_reported(sim: SimulatedAlpaca) -> None:
    """Failed before with the RuntimeError out of ``modify()``. Now
    BeingReported, no PATCH sent, t-a still of unknown outcome; a modify once the report works
    reports it and replaces it (t-a.r1, limit 52)."""
    gw = unknown_limit(sim, 50.0)
    try:
        reader = gw.stream.executions = BreakingReader(gw.stream.executions)
        drain(gw.events)
        with pytest.raises(BeingReported, match="its report failed"):
            gw.modify(limit(52.0))
        assert sim.replaces_received() == []  # nothing sent
        seen = drain(gw.events)
        assert [e.code for e in of(VenueErrorReported, seen, "t-a")] == ["unknown_report_failed"]
        assert gw.follows_unknown("t-a") and not of(OrderLost, seen, "t-a")
        reader.broken = False
        gw.modify(limit(52.0))
        ((_, form),) = sim.replaces_received()
        assert (form.client_order_id, form.limit_price) == ("t-a.r1", 52.0)
        assert of(OrderAccepted, drain(gw.events), "t-a") and not gw.follows_unknown("t-a")
    finally:
        gw.close()
