"""A reconciliation reads the venue's positions and open orders before it settles the owed
executions; an execution that arrives while it looks an owed order up (another order's fill) is
applied to the book after that read. The positions are then compared with a read made after
``settle``, so the end of a run does not say the venue holds less than the journal. Before, the
first read was compared: "end of run reconciliation: AAA looks missing (journal 5, venue 0);
check with `ml4t-live reconcile`", a WARNING that was untrue (seen failing so).

The venue (FakeVenue, the remote side) loses every cancel; its open orders leave the first order
out once it is cancelled (a stale list), and the first look-up says it filled (owed: its
executions never come); later look-ups do not find it. At the first look-up from ``fill_from``
(the fake seconds) the venue fills the second order, its execution reaching the client at once;
``read_again_fails``: the venue's next read then fails."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import ConnectionFailed
from ml4t_live.protocols import VenueOrder
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import HaltedLimits, drive, journal_of
from tests.engine.cancel_venues import LosesFirstCancel
from tests.engine.fake_clock import Clock


@dataclass
class FillsDuringLookUp(LosesFirstCancel):
    lost: int = 99
    clock: Clock = field(default_factory=Clock)
    fill_from: float = 180.0
    looked_up: list[float] = field(default_factory=list)
    read_again_fails: bool = False
    filled_second: bool = False  # the read after the fill during the look-up fails

    def now(self) -> float:
        return self.clock.now - 1000.0

    def snapshot(self):
        if self.filled_second and self.read_again_fails:
            self.read_again_fails = False
            raise ConnectionFailed("positions unreadable")
        snapshot = super().snapshot()
        first = self.placed[0].client_order_id if self.placed else None
        listed = [o for o in snapshot.open_orders if o.client_order_id != first or not self.cancelled]
        return replace(snapshot, open_orders=listed)

    def lookup(self, cids):
        self.looked_up.append(self.now())
        first, second = self.placed[0], self.placed[1]
        if len(self.looked_up) == 1:
            return {first.client_order_id: VenueOrder(first.client_order_id, "V1", first.asset, first.side,
                                                      first.quantity, first.quantity, first.order_type, "filled",
                                                      first.limit_price)}  # fmt: skip
        working = any(o.client_order_id == second.client_order_id for o in self.open_orders)
        if self.now() >= self.fill_from and working:
            self.open_orders = [o for o in self.open_orders if o.client_order_id != second.client_order_id]
            self.fill(second)
            self.filled_second = True
        return {}


class TwoHalted(HaltedLimits):
    """Two limit buys, then HALTED; the bar at 60 s makes the next bar's reconciliation due."""

    def __init__(self, journal, venue: FillsDuringLookUp) -> None:
        super().__init__(journal, venue.clock, 2)
        self.venue = venue

    def on_data(self, timestamp, data, context, broker):
        if self.venue.now() == 60.0:
            broker.own.check_soon()
        super().on_data(timestamp, data, context, broker)


def test_an_execution_applied_during_the_end_of_run_look_up_is_not_a_missing_position(tmp_path):
    # the 60 s check finds the first order unlisted and filled (owed); the 90 s reconciliation
    # passes; the end of the run's reconciliation (180 s) looks it up, and meanwhile the venue
    # fills the second order, its execution applied by that look-up's drain
    venue = FillsDuringLookUp(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path, reconcile_every=1e9)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(TwoHalted(tmp_path / "fake-DU0001-cr.journal", venue), broker, 6, "keep")
    assert venue.looked_up[-1] == 180.0 and venue.positions["AAA"].quantity == 5
    _, positions, fills = journal_of(tmp_path)
    assert fills == 1 and positions == {"AAA": 5.0}
    assert not [line for line in lines if "reconciliation: AAA looks" in line or "reconciliation: missing" in line]
    assert broker.own.differences == []
    broker.close()


def test_a_failed_read_after_settle_skips_the_comparison(tmp_path):
    # as above, but the read after the look-up fails: no comparison, nothing said missing
    venue = FillsDuringLookUp(fill_on_wait=False, read_again_fails=True)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path, reconcile_every=1e9)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(TwoHalted(tmp_path / "fake-DU0001-cr.journal", venue), broker, 6, "keep")
    assert venue.looked_up[-1] == 180.0 and not venue.read_again_fails
    assert [line for line in lines if "could not be read again after the owed executions were settled" in line]
    assert not [line for line in lines if "reconciliation: AAA looks" in line or "reconciliation: missing" in line]
    broker.close()
