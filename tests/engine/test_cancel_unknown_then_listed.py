"""A cancelling order a check's look-up showed by its executions alone ("unknown": IB lists it
neither open to this client id nor completed; it may work under another client id), then listed
working again by the later checks: its state is known from then on, and its cancel's ALERT says
what the venue said last ("still listed it working", the cancel sent again to it), not the
"unknown" of an earlier check, whose advice (cancel it under another client id) sends the
operator to the wrong place. ``_Cancel.found_unknown`` was set and never cleared: the ALERT said
"shows it by its executions alone ... under another client id" (seen failing so).

The venue (FakeVenue, the remote side) loses every cancel (the order keeps working); its open
orders leave the order out once (a list stale for one read), when the look-up shows the order by
its 2 executions alone; every later read lists it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ml4t_live.events import OrderPartiallyFilled
from ml4t_live.protocols import VenueOrder
from tests.engine.cancel_support import alert_lines, run
from tests.engine.cancel_venues import LosesFirstCancel
from tests.engine.fake_clock import Clock
from tests.engine.unknown_outcome_support import WHEN


@dataclass
class UnlistedOnce(LosesFirstCancel):
    """Loses every cancel; the first open-orders read after the first cancel leaves the order out,
    and the look-up then shows it by its executions alone (2 of 5, reported as a part fill)."""

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
        out = {}
        for cid in cids:
            request = next(r for r in self.placed if r.client_order_id == cid)
            self.events.put(OrderPartiallyFilled(cid, "E-1", "AAA", request.side, 2, 90.0, WHEN, 1.0, 2))
            out[cid] = VenueOrder(cid, "V1", "AAA", request.side, 2, 2, request.order_type, "unknown")
        return out


def test_an_order_shown_unknown_then_listed_working_gets_the_listed_alert(tmp_path):
    venue = UnlistedOnce(fill_on_wait=False)
    strategy, broker, lines = run(venue, 60, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.looked_up == [[cid]]  # the first check (60 s): not listed, shown "unknown"
    assert venue.times[0] == 30.0 and len(venue.times) == 1 + 5  # the halt's cancel, then 5 tries
    alert = [m for m in alert_lines(lines, cid) if "never confirmed its cancel" in m]
    assert len(alert) == 1, alert
    assert "still listed it working" in alert[0], alert
    assert "executions alone" not in alert[0] and "another client id" not in alert[0], alert
    assert cid in broker.book.cancelling and strategy.orders[0].filled_quantity == 2
    broker.close()
