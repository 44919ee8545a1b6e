"""An OCO pair of unknown outcome the trade stream reported, found once but whose report broke,
whose walks then keep failing: walked less often all the same (no ALERT of its own: its failed
report has one).

test_alpaca_unknown_oco_walk_bound.py's scenario (real alpaca-py against SimulatedAlpaca; the
watcher's tick called on the stream's loop); the report is broken by our own execution reader
(unknown_support.py's ``BreakingReader``), the walks by the simulator's
``lookup_error``.
"""

from __future__ import annotations

from alpaca_helpers import drain, inject, of
from runtime_support import log_lines
from unknown_support import ATTEMPTS, BreakingReader, unknown_oco

from ml4t_live.events import OrderAccepted
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_failing_walks_after_a_failed_report_rest_as_any(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    """Failed before: an entry whose report had failed never counted its failed walks: it was
    walked at every tick with no bound (found here at the first tick the venue answered)."""
    leg_id = unknown_oco(sim, gw, silent=False)
    limit = gw.config.unknown_order_lookups
    reader = gw.stream.executions = BreakingReader(gw.stream.executions)
    tick = gw.stream.resolve_unconfirmed
    with log_lines([]) as lines:
        gw.stream.session.call(tick)  # found; its report breaks
        assert reader.reads >= 1 and gw.follows_unknown("t-tp")
        reader.broken = False
        inject(sim, "lookup_error", count=ATTEMPTS * (limit + 1))
        for _ in range(limit):  # failed walks up to the bound: from there it rests between walks
            gw.stream.session.call(tick)
        for _ in range(limit - 1):  # resting
            gw.stream.session.call(tick)
        gw.stream.session.call(tick)  # one more failed walk: it rests again
        for _ in range(limit - 1):  # resting: not walked (the venue would answer now)
            gw.stream.session.call(tick)
            assert not of(OrderAccepted, drain(gw.events), "t-sl")
        gw.stream.session.call(tick)
        assert [e.venue_order_id for e in of(OrderAccepted, drain(gw.events), "t-sl")] == [leg_id]
    assert not [line for line in lines if "could not be walked" in line]  # (its failed report's ALERT is its own)
