"""A cancelling order a check's look-up found filled (its executions not come), then listed
working again by the later checks (the look-up's answer was stale): from then on it is a working
order whose cancel is unconfirmed, so ``max_open_orders`` counts it again and its cancel's ALERT
says what the venue said last ("still listed it working", the cancel sent again to it), not "found
it filled", whose advice (check the position) misleads. ``_Cancel.found_filled`` was set and never
cleared: the ALERT said "found it filled, but its executions have not all come" and ``overdue``
left the order out (seen failing so), as ``found_unknown`` did before 9b5400a
(tests/engine/test_cancel_unknown_then_listed.py).

The venue (FakeVenue, the remote side) loses every cancel (the order keeps working); its open
orders leave the order out once (a list stale for one read), when the look-up says it filled all 5
with no execution reported; every later read lists it, and a later look-up says it works."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.protocols import VenueOrder
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import HaltedLimits, alert_lines, drive
from tests.engine.cancel_venues import LosesFirstCancel
from tests.engine.fake_clock import Clock


@dataclass
class FilledOnceUnlisted(LosesFirstCancel):
    """Loses every cancel; the first open-orders read after the first cancel leaves the order out,
    and the look-up then says it filled all 5 (no execution reported); later look-ups say open."""

    lost: int = 99
    clock: Clock = field(default_factory=Clock)
    times: list[float] = field(default_factory=list)
    hidden: int = 1
    looked_up: list[list[str]] = field(default_factory=list)

    def cancel(self, client_order_id):
        self.times.append(self.clock.now - 1000.0)
        super().cancel(client_order_id)

    def snapshot(self):
        snapshot = super().snapshot()
        if self.cancelled and self.hidden:
            self.hidden -= 1
            return replace(snapshot, open_orders=[])
        return snapshot

    def lookup(self, cids):
        self.looked_up.append(list(cids))
        first = len(self.looked_up) == 1
        out = {}
        for cid in cids:
            request = next(r for r in self.placed if r.client_order_id == cid)
            out[cid] = VenueOrder(cid, "V1", request.asset, request.side, request.quantity,
                                  request.quantity if first else 0.0, request.order_type,
                                  "filled" if first else "open", request.limit_price)  # fmt: skip
        return out


def test_an_order_found_filled_then_listed_working_is_counted_and_gets_the_listed_alert(tmp_path):
    venue = FilledOnceUnlisted(fill_on_wait=False)
    strategy = HaltedLimits(tmp_path / "fake-DU0001-cr.journal", venue.clock, 1)
    # no reconciliation but the end's: none settles what the look-up said it owes
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path, reconcile_every=1e9)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(strategy, broker, 60, "keep")
    cid = strategy.orders[0].order_id
    assert venue.looked_up[0] == [cid]  # the first check (60 s): not listed, found filled
    said = [line for line in lines if line.startswith("WARNING") and cid in line and "executions decide" in line]
    assert len(said) == 1, said  # the finding was made
    assert venue.times[0] == 30.0 and len(venue.times) == 1 + 5  # the halt's cancel, then 5 tries
    alert = [m for m in alert_lines(lines, cid) if "never confirmed its cancel" in m]
    assert len(alert) == 1, alert
    assert "still listed it working" in alert[0], alert
    assert "found it filled" not in alert[0], alert
    assert cid in broker.book.cancelling and strategy.orders[0].filled_quantity == 0  # nothing made up
    assert broker.cancel_resends.overdue(broker.book.cancelling) == 1  # working: max_open_orders counts it
    broker.close()
