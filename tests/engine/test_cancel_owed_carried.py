"""A cancelling order a look-up found filled (owed its executions), then listed working by a stale
open-orders read at a check whose budget another order's slow cancel spent: its send is carried
to the next check. Listed working, it is no longer owed, and it is no longer found filled either,
whether its check sends or is carried. Before, the debt was dropped at the listing but the
found-filled flag only when a send or an unsent check ran (``checked(listed=True)``), never for a
carried order: the next check's look-up, finding it filled, took it as "found filled again" (a
DEBUG line) and never owed it again, so its lost execution was never made up and the reconciliation
saw the venue's 5 as external (seen failing so: the order stayed cancelling, 0 filled).

The venue (the remote side, LosesFirstCancel) loses every cancel. The second order's cancel makes
the venue fill it (5 at 89) instead, its execution never reaching the client; its open orders
leave it out from then on, except the read at 120 s (stale: as before it filled). The first
order's repeat cancel at 120 s takes 10 s of the check's timer (the 5 s budget spent)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ml4t.backtest import OrderStatus

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.protocols import VenueOrder, VenuePosition
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import HaltedLimits, alert_lines, drive, journal_of
from tests.engine.cancel_venues import LosesFirstCancel
from tests.engine.fake_clock import Clock

MADE_UP = "its executions never came"
STALE_AT = 120.0


class Timer:
    """The checks' budget timer: moved on only by the slow cancel."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class SlowCancelStaleList(LosesFirstCancel):
    lost: int = 99
    clock: Clock = field(default_factory=Clock)
    timer: Timer = field(default_factory=Timer)
    filled: bool = False  # the venue filled the second order (its execution lost)

    def now(self) -> float:
        return self.clock.now - 1000.0

    def cancel(self, cid):
        super().cancel(cid)
        if cid == self.placed[0].client_order_id and self.now() == STALE_AT:
            self.timer.t += 10.0  # the check's budget is spent: the batches after this one are carried
        if cid == self.placed[1].client_order_id and not self.filled:
            self.filled = True
            self.positions["AAA"] = VenuePosition("AAA", 5.0, 89.0)

    def snapshot(self):
        snapshot = super().snapshot()
        if not self.filled or self.now() == STALE_AT:  # (at 120 s: as before it filled)
            return snapshot
        second = self.placed[1].client_order_id
        return replace(snapshot, open_orders=[o for o in snapshot.open_orders if o.client_order_id != second])

    def lookup(self, cids):
        out = {}
        for cid in cids:
            request = next(r for r in self.placed if r.client_order_id == cid)
            filled = self.filled and cid == self.placed[1].client_order_id
            out[cid] = VenueOrder(cid, "V", request.asset, request.side, request.quantity,
                                  request.quantity if filled else 0.0, request.order_type,
                                  "filled" if filled else "open", request.limit_price)  # fmt: skip
        return out


class Reconciling(HaltedLimits):
    """HaltedLimits whose bar at each of ``reconcile_at`` (fake seconds) makes the next bar's
    reconciliation due."""

    def __init__(self, journal, venue, reconcile_at) -> None:
        super().__init__(journal, venue.clock, 2)
        self.venue, self.reconcile_at = venue, set(reconcile_at)

    def on_data(self, timestamp, data, context, broker):
        if self.venue.now() in self.reconcile_at:
            broker.own.check_soon()
        super().on_data(timestamp, data, context, broker)


def test_a_found_filled_order_listed_working_and_carried_is_owed_again_when_found_filled_again(tmp_path):
    venue = SlowCancelStaleList(fill_on_wait=False)
    strategy = Reconciling(tmp_path / "fake-DU0001-cr.journal", venue, (30.0, 150.0, 210.0, 270.0))
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path, reconcile_every=1e9)
    broker.cancel_resends = CancelResends(clock=venue.clock, timer=venue.timer)
    try:
        lines = drive(strategy, broker, 20, "keep")
        second = strategy.orders[1].order_id
        carried = [line for line in lines if "carried to the next check" in line]
        assert len(carried) == 1 and second in carried[0]  # (the case: listed, then carried)
        assert any(f"order {second}: listed working after a look-up found it filled" in line for line in lines)
        assert strategy.orders[1].status is OrderStatus.FILLED and strategy.orders[1].filled_quantity == 5.0
        assert second not in broker.book.cancelling and second not in broker.owed
        made = [line for line in alert_lines(lines, second) if MADE_UP in line]
        assert len(made) == 1 and "applied at 89" in made[0]
        assert journal_of(tmp_path)[1:] == ({"AAA": 5.0}, 1)
    finally:
        broker.close()
