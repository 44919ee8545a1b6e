"""A cancelling order a check's look-up found filled (owed its executions), then listed working by
a check that reads the venue's open orders for ANOTHER order's due cancel, its own cancel not due.
The listing ends its debt and its found-filled note all the same: when the venue then really fills
it, the next look-up finding it filled owes it afresh, and its execution, on its way, decides.
Before, only the due cancels' listing ended a debt: the stale finding's debt survived, and the
reconciliation after the real fill made it up at the order's limit with the untrue ALERT "its
executions never came" (the real execution, later, ignored) (seen failing so).

The venue (FakeVenue, the remote side) loses every cancel. Two limit buys, cancelled when the
strategy is halted. At 60 s (fake seconds, 30 s a bar) its open orders leave the first order out
(both reads of that bar: the check's and the reconciliation's, which passes), and the look-up says
it filled all 5, no execution reported; every later read lists it while it works. The strategy
makes the second order's cancel due at 90 s (its own is due at 120 s); the venue fills the first
order at 90 s, its execution reaching the client on the first read 60 s later."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ml4t.backtest import OrderStatus

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.events import OrderFilled
from ml4t_live.protocols import VenueOrder, VenuePosition
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import HaltedLimits, alert_lines, drive, journal_of
from tests.engine.cancel_venues import LosesFirstCancel
from tests.engine.fake_clock import Clock
from tests.engine.unknown_outcome_support import WHEN

MADE_UP = "its executions never came"


@dataclass
class FirstHiddenOnce(LosesFirstCancel):
    lost: int = 99
    clock: Clock = field(default_factory=Clock)
    looked_up: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    filled_at: float | None = None
    delay: float | None = 60.0

    def now(self) -> float:
        return self.clock.now - 1000.0

    def snapshot(self):
        snapshot = super().snapshot()
        if not self.placed:
            return snapshot
        first = self.placed[0]
        if self.filled_at is not None and self.delay is not None and self.now() >= self.filled_at + self.delay:
            self.delay = None
            self.events.put(OrderFilled(first.client_order_id, "E-real", "AAA", first.side, first.quantity, 89.5,
                                        WHEN, 1.0, first.quantity))  # fmt: skip
        if self.now() == 60.0:
            return replace(snapshot, open_orders=[o for o in snapshot.open_orders
                                                  if o.client_order_id != first.client_order_id])  # fmt: skip
        return snapshot

    def fill_now(self) -> None:
        """The venue fills the first order: it leaves the open orders, the position moves; its
        execution is on its way."""
        first = self.placed[0]
        self.filled_at = self.now()
        self.open_orders = [o for o in self.open_orders if o.client_order_id != first.client_order_id]
        self.positions["AAA"] = VenuePosition("AAA", first.quantity, 89.5)

    def lookup(self, cids):
        self.looked_up.append((self.now(), tuple(cids)))
        out = {}
        for cid in cids:
            request = next(r for r in self.placed if r.client_order_id == cid)
            filled = request is self.placed[0] and (len(self.looked_up) == 1 or self.filled_at is not None)
            out[cid] = VenueOrder(cid, "V1", request.asset, request.side, request.quantity,
                                  request.quantity if filled else 0.0, request.order_type,
                                  "filled" if filled else "open", request.limit_price)  # fmt: skip
        return out


class Scripted(HaltedLimits):
    """Two halted limit buys; at 30 s the next bar's reconciliation is made due (60 s), at 60 s the
    second order's cancel is made due at once (checked at 90 s), at 90 s the venue fills the first
    and the next bar's reconciliation is made due (120 s)."""

    def __init__(self, journal, venue: FirstHiddenOnce) -> None:
        super().__init__(journal, venue.clock, 2)
        self.venue = venue

    def on_data(self, timestamp, data, context, broker):
        now = self.venue.now()
        if now in (30.0, 90.0):
            broker.own.check_soon()
        if now == 60.0:
            broker.cancel_resends.due_at_once(self.orders[1].order_id)
        if now == 90.0:
            self.venue.fill_now()
        super().on_data(timestamp, data, context, broker)


def test_an_owed_order_listed_by_another_order_s_cancel_check_is_no_longer_owed(tmp_path):
    venue = FirstHiddenOnce(fill_on_wait=False)
    strategy = Scripted(tmp_path / "fake-DU0001-cr.journal", venue)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path, reconcile_every=1e9)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(strategy, broker, 8, "keep")
    first = strategy.orders[0]
    cid = first.order_id
    listed = [line for line in lines if f"order {cid}: listed working after a look-up found it filled" in line]
    assert len(listed) == 1, lines  # the 90 s check's read, for the second order's cancel
    # owed afresh by the 120 s check's look-up (its wait starting then): the 120 s reconciliation
    # does not look it up, its execution (150 s) decides
    said = [line for line in lines if line.startswith("WARNING") and f"order {cid} filled 5" in line
            and "executions decide" in line]  # fmt: skip
    assert len(said) == 2, said
    assert venue.looked_up == [(60.0, (cid,)), (120.0, (cid,))]
    assert not [m for m in alert_lines(lines, cid) if MADE_UP in m]
    assert first.status is OrderStatus.FILLED and first.filled_price == 89.5  # the real execution's
    _, positions, fills = journal_of(tmp_path)
    assert fills == 1 and positions == {"AAA": 5.0}
    broker.close()
