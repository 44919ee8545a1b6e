"""A cancelling order a check's look-up found filled (its executions not come: owed), then listed
working by a later check (the look-up's answer was stale). The owed debt is dropped there: a fill
the venue makes later is counted from its execution, and a look-up lying "filled" again never makes
a fill up for the order the venue works. Before, the debt outlived the listing: the first
reconciliation after a real fill made it up at the order's limit price with an ALERT "its
executions never came" (the real execution, 30 s late, then ignored), and a reconciliation whose
look-up said "filled" again made up a fill for an order the venue listed working, and later
cancelled (seen failing so).

The venue (FakeVenue, the remote side) loses every cancel (the order keeps working). Its open
orders leave the order out at the first check (t=60 s of the fake clock, 30 s a bar: a list stale
for one read), when the look-up says it filled all 5 with no execution reported; every later read
lists it while it works. ``fill_at``: the venue really fills it (89.5), its execution reaching the
client on the first open-orders read ``delay`` s later (None: never). Reconciliations are due only
at the bars a test names (``reconcile_every`` is out of reach)."""

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
class StaleFilledThenWorks(LosesFirstCancel):
    lost: int = 99
    clock: Clock = field(default_factory=Clock)
    hidden: int = 1
    delay: float | None = 60.0  # the execution's way to the client after the real fill (None: never)
    always_filled: bool = False  # every look-up says filled (a look-up lying while the order works)
    looked_up: list[float] = field(default_factory=list)
    filled_at: float | None = None  # when the venue really filled it (the fake time)

    def now(self) -> float:
        return self.clock.now - 1000.0

    def snapshot(self):
        snapshot = super().snapshot()
        if self.filled_at is not None and self.delay is not None and self.now() >= self.filled_at + self.delay:
            request, self.delay = self.placed[0], None
            self.events.put(OrderFilled(request.client_order_id, "E-real", "AAA", request.side, request.quantity,
                                        89.5, WHEN, 1.0, request.quantity))  # fmt: skip
        if self.cancelled and self.hidden:
            self.hidden -= 1
            return replace(snapshot, open_orders=[])
        return snapshot

    def fill_now(self) -> None:
        """The venue fills the order: it leaves the open orders, the position moves; its execution
        is on its way."""
        self.filled_at = self.now()
        self.open_orders = []
        self.positions["AAA"] = VenuePosition("AAA", self.placed[0].quantity, 89.5)

    def lookup(self, cids):
        self.looked_up.append(self.now())
        filled = len(self.looked_up) == 1 or self.always_filled or self.filled_at is not None
        out = {}
        for cid in cids:
            request = next(r for r in self.placed if r.client_order_id == cid)
            out[cid] = VenueOrder(cid, "V1", request.asset, request.side, request.quantity,
                                  request.quantity if filled else 0.0, request.order_type,
                                  "filled" if filled else "open", request.limit_price)  # fmt: skip
        return out


class Scripted(HaltedLimits):
    """HaltedLimits whose bar at each of ``reconcile_at`` (fake seconds) makes the next bar's
    reconciliation due, and whose bar at ``fill_at`` has the venue fill the order."""

    def __init__(self, journal, venue: StaleFilledThenWorks, reconcile_at=(), fill_at=None) -> None:
        super().__init__(journal, venue.clock, 1)
        self.venue, self.reconcile_at, self.fill_at = venue, set(reconcile_at), fill_at

    def on_data(self, timestamp, data, context, broker):
        now = self.venue.now()
        if now in self.reconcile_at:
            broker.own.check_soon()
        if now == self.fill_at:
            self.venue.fill_now()
        super().on_data(timestamp, data, context, broker)


def run_scripted(tmp_path, venue, bars=12, **script):
    strategy = Scripted(tmp_path / "fake-DU0001-cr.journal", venue, **script)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path, reconcile_every=1e9)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(strategy, broker, bars, "keep")
    return strategy.orders[0], broker, lines


def test_a_fill_after_the_order_was_listed_working_is_counted_from_its_execution(tmp_path):
    # checks at 60 s (unlisted: found filled), 120 s (listed working), 240 s; reconciliations at
    # 60 s and 180 s; the venue fills it at 150 s, its execution comes on the read at 240 s
    venue = StaleFilledThenWorks(fill_on_wait=False, delay=60.0)
    order, broker, lines = run_scripted(tmp_path, venue, reconcile_at=(30.0, 150.0), fill_at=150.0)
    assert not [m for m in alert_lines(lines, order.order_id) if MADE_UP in m]
    assert order.status is OrderStatus.FILLED and order.filled_price == 89.5  # the real execution's
    _, positions, fills = journal_of(tmp_path)
    assert fills == 1 and positions == {"AAA": 5.0}
    assert venue.looked_up == [60.0]  # the 180 s reconciliation owes it nothing: not looked up
    assert not broker.book.cancelling
    broker.close()


def test_a_later_look_up_finding_it_filled_owes_it_again_and_its_fill_is_made_up_once_after_a_wait(tmp_path):
    # the execution never comes: the check at 240 s finds it unlisted and filled (said again: owed
    # afresh), the reconciliation at 270 s passes, the one at 300 s looks it up and makes it up
    venue = StaleFilledThenWorks(fill_on_wait=False, delay=None)
    order, broker, lines = run_scripted(tmp_path, venue, reconcile_at=(30.0, 150.0, 240.0, 270.0), fill_at=150.0)
    assert venue.looked_up == [60.0, 240.0, 300.0]
    said = [line for line in lines if line.startswith("WARNING") and "executions decide" in line]
    assert len(said) == 2, said  # the finding at 60 s, and the one at 240 s
    assert order.status is OrderStatus.FILLED and order.filled_price == 90.0  # made up, at its limit
    _, positions, fills = journal_of(tmp_path)
    assert fills == 1 and positions == {"AAA": 5.0}
    assert len([m for m in alert_lines(lines, order.order_id) if MADE_UP in m]) == 1
    broker.close()


def test_a_look_up_saying_filled_again_never_fills_an_order_listed_working(tmp_path):
    # every look-up says filled, the venue never fills it; checks at 60 s (unlisted), 120 s and
    # 240 s (listed working); reconciliations at 60 s, 180 s and 270 s
    venue = StaleFilledThenWorks(fill_on_wait=False, always_filled=True)
    order, broker, lines = run_scripted(tmp_path, venue, reconcile_at=(30.0, 150.0, 240.0))
    assert not [m for m in alert_lines(lines, order.order_id) if MADE_UP in m]
    assert order.filled_quantity == 0 and order.order_id in broker.book.cancelling
    _, positions, fills = journal_of(tmp_path)
    assert fills == 0 and positions == {}
    assert venue.looked_up == [60.0]  # listed working since: never looked up again
    assert broker.left_at_venue and broker.cancel_resends.overdue(broker.book.cancelling) == 1
    broker.close()


def test_an_order_listed_working_whose_cancel_the_venue_then_takes_ends_cancelled_with_nothing_made_up(tmp_path):
    # as above, but the venue takes the third cancel (the repeat at the 240 s check): it ends
    # cancelled, whatever the look-ups said before
    venue = StaleFilledThenWorks(fill_on_wait=False, always_filled=True, lost=2)
    order, broker, lines = run_scripted(tmp_path, venue, reconcile_at=(30.0, 150.0, 240.0))
    assert not [m for m in alert_lines(lines, order.order_id) if MADE_UP in m]
    assert order.status is OrderStatus.CANCELLED and order.filled_quantity == 0
    assert not broker.book.cancelling and broker.left_at_venue == []
    intents, positions, fills = journal_of(tmp_path)
    assert intents[order.order_id]["status"] == "cancelled" and fills == 0 and positions == {}
    assert len(venue.cancelled) == 3 and venue.looked_up == [60.0]
    broker.close()


def test_a_reconciliation_whose_open_orders_list_an_owed_order_makes_nothing_up(tmp_path):
    # every look-up says filled, the venue never fills it; the check at 60 s finds it unlisted
    # (owed), reconciliations at 60 s and 90 s, the next check at 120 s. The 90 s reconciliation's
    # own open orders list it working: no longer owed there, not looked up, nothing made up.
    # Before, that reconciliation looked it up first (its snapshot read after) and made up 5 at 90.0
    # with the ALERT, for an order the venue listed working and never filled
    venue = StaleFilledThenWorks(fill_on_wait=False, always_filled=True)
    order, broker, lines = run_scripted(tmp_path, venue, bars=6, reconcile_at=(30.0, 60.0, 90.0))
    cid = order.order_id
    assert not [m for m in alert_lines(lines, cid) if MADE_UP in m]
    assert venue.looked_up == [60.0]
    listed = [line for line in lines if f"order {cid}: listed working after a look-up found it filled" in line]
    assert len(listed) == 1, lines  # the 90 s reconciliation's
    assert order.filled_quantity == 0 and cid in broker.book.cancelling and cid not in broker.owed
    _, positions, fills = journal_of(tmp_path)
    assert fills == 0 and positions == {}
    assert broker.cancel_resends.overdue(broker.book.cancelling) == 1  # found filled no more: counted
    broker.close()
