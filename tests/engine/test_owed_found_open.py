"""A cancelling order a look-up found filled (its executions not come: owed, and noted found filled
by its cancel's follow-up), that a later look-up finds open (the first answer was stale): the debt
and the note end together (``CancelResending._listed_now``), so when the venue really fills it later
and its execution never comes, a check's look-up finding it filled owes it afresh and the fill is
made up. Before, the look-up of a reconciliation (``settle``) and the retried look-up of a warm
restart (``_found_working``) finding it open left the found-filled note: the later "filled" was
taken as "found filled again" (a DEBUG line), never owed, the order left CANCELLED at 0 while the
venue held its 5 (seen failing so). A reconciliation whose read of the venue fails settles no
owed order (it waits for the next one).

The venue (FakeVenue, the remote side) loses every cancel; its open orders leave the order out
once it is cancelled (a stale list); each look-up's answer is scripted by the fake time
(``answer``), or fails (``fail_lookup``). At ``fill_at`` the venue fills the order, its execution
never reaching the client. Reconciliations are due only at the bars a test names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from loguru import logger
from ml4t.backtest import OrderStatus

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import ConnectionFailed
from ml4t_live.protocols import VenueOrder, VenuePosition
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import HaltedLimits, alert_lines, drive, journal_of
from tests.engine.cancel_venues import LosesFirstCancel
from tests.engine.fake_clock import Clock

MADE_UP = "its executions never came"


@dataclass
class StaleLists(LosesFirstCancel):
    lost: int = 99
    clock: Clock = field(default_factory=Clock)
    answer: Callable[[float], str] = lambda t: "filled"  # a look-up's status at fake time t
    fail_lookup: Callable[[float], bool] = lambda t: False
    looked_up: list[tuple[float, str]] = field(default_factory=list)
    filled_at: float | None = None

    def now(self) -> float:
        return self.clock.now - 1000.0

    def snapshot(self):
        snapshot = super().snapshot()
        return replace(snapshot, open_orders=[]) if self.cancelled else snapshot

    def fill_now(self) -> None:
        """The venue fills the order; its execution never reaches the client."""
        self.filled_at = self.now()
        self.open_orders = []
        self.positions["AAA"] = VenuePosition("AAA", self.placed[0].quantity, 89.5)

    def lookup(self, cids):
        if self.fail_lookup(self.now()):
            self.looked_up.append((self.now(), "failed"))
            raise ConnectionFailed("look-up failed")
        status = "filled" if self.filled_at is not None else self.answer(self.now())
        self.looked_up.append((self.now(), status))
        out = {}
        for cid in cids:
            request = next(r for r in self.placed if r.client_order_id == cid)
            out[cid] = VenueOrder(cid, "V1", request.asset, request.side, request.quantity,
                                  request.quantity if status == "filled" else 0.0, request.order_type, status,
                                  request.limit_price)  # fmt: skip
        return out


class Scripted(HaltedLimits):
    """HaltedLimits whose bar at each of ``reconcile_at`` (fake seconds) makes the next bar's
    reconciliation due, and whose bar at ``fill_at`` (or the first after ``fill_when()`` holds)
    has the venue fill the order."""

    def __init__(self, journal, venue: StaleLists, reconcile_at=(), fill_at=None, fill_when=None) -> None:
        super().__init__(journal, venue.clock, 1)
        self.venue, self.reconcile_at, self.fill_at, self.fill_when = venue, set(reconcile_at), fill_at, fill_when

    def on_data(self, timestamp, data, context, broker):
        now = self.venue.now()
        if now in self.reconcile_at:
            broker.own.check_soon()
        live = not broker.link.replaying
        if self.venue.filled_at is None and live and (now == self.fill_at or (self.fill_when and self.fill_when())):
            self.venue.fill_now()
        super().on_data(timestamp, data, context, broker)


def broker_on(venue, tmp_path) -> VenueBroker:
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path, reconcile_every=1e9)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    return broker


def debug_lines(run: Callable[[], list[str]]) -> tuple[list[str], list[str]]:
    found: list[str] = []
    sink = logger.add(lambda m: found.append(m.record["message"]), level="DEBUG",
                      filter=lambda r: r["level"].name == "DEBUG")  # fmt: skip
    try:
        return run(), found
    finally:
        logger.remove(sink)


def test_a_reconciliation_look_up_finding_an_owed_cancelling_order_open_ends_its_found_filled_note(tmp_path):
    # checks at 60 s and 120 s find it unlisted and filled (owed); the 180 s reconciliation's
    # look-up finds it open (the debt and the note end); the venue fills it at 210 s, its execution
    # lost; the 240 s check finds it filled: owed afresh, made up at the 300 s reconciliation
    venue = StaleLists(fill_on_wait=False, answer=lambda t: "open" if t == 180.0 else "filled")
    strategy = Scripted(tmp_path / "fake-DU0001-cr.journal", venue, fill_at=210.0,
                        reconcile_at=(90.0, 150.0, 210.0, 270.0, 330.0))  # fmt: skip
    broker = broker_on(venue, tmp_path)
    lines, debug = debug_lines(lambda: drive(strategy, broker, 14, "keep"))
    order = strategy.orders[0]
    assert (180.0, "open") in venue.looked_up and (240.0, "filled") in venue.looked_up
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 5
    assert len([m for m in debug if "found filled again" in m]) == 1  # the 120 s check's, not the 240 s one's
    assert len([m for m in alert_lines(lines, order.order_id) if MADE_UP in m]) == 1
    _, positions, fills = journal_of(tmp_path)
    assert fills == 1 and positions == {"AAA": 5.0}
    broker.close()


def test_a_retried_restart_look_up_finding_the_order_open_ends_the_journaled_found_filled_note(tmp_path):
    # run 1: the 60 s check finds the cancelling order unlisted and filled (owed; the follow-up
    # journaled found filled). Restart: its look-up fails; the first reconciliation's retried
    # look-up finds it open; the venue then fills it, its execution lost; the next check's look-up
    # finds it filled: owed (the restart carried no debt), made up by a later reconciliation
    journal = tmp_path / "fake-DU0001-cr.journal"
    venue = StaleLists(fill_on_wait=False, answer=lambda t: "filled" if t < 100.0 else "open")
    first = broker_on(venue, tmp_path)
    drive(Scripted(journal, venue), first, 3, "keep")
    first.close()
    venue.fail_lookup = lambda t: len(venue.looked_up) == 1  # the restart's look-up only

    def found_open() -> bool:
        return any(status == "open" for _, status in venue.looked_up)

    strategy = Scripted(journal, venue, reconcile_at=(270.0, 330.0, 390.0), fill_when=found_open)
    broker = broker_on(venue, tmp_path)
    lines, debug = debug_lines(lambda: drive(strategy, broker, 16, "keep"))
    cid = venue.placed[0].client_order_id
    order = broker.book.get(cid)
    assert [s for _, s in venue.looked_up][:3] == ["filled", "failed", "open"], venue.looked_up
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 5
    assert not [m for m in debug if "found filled again" in m]
    assert len([m for m in alert_lines(lines, cid) if MADE_UP in m]) == 1
    _, positions, fills = journal_of(tmp_path)
    assert fills == 1 and positions == {"AAA": 5.0}
    broker.close()


def test_a_reconciliation_whose_read_fails_settles_nothing(tmp_path):
    # the 60 s check finds it unlisted and filled (owed); the 90 s reconciliation passes; the
    # venue's positions cannot be read at the 120 s one: the owed order is not looked up there
    # (nothing made up), but at the next reconciliation that reads them. A mutant settling in the
    # read-failure branch looked it up (and made it up) at 120 s: every other test passed with it
    venue = StaleLists(fill_on_wait=False)
    strategy = Scripted(tmp_path / "fake-DU0001-cr.journal", venue, reconcile_at=(60.0, 90.0))
    broker = broker_on(venue, tmp_path)
    snapshot = venue.snapshot

    def failing_snapshot():
        if venue.now() == 120.0:
            raise ConnectionFailed("positions unreadable")
        return snapshot()

    venue.snapshot = failing_snapshot
    lines = drive(strategy, broker, 6, "keep")
    order = strategy.orders[0]
    assert any("reconciliation skipped" in line for line in lines)
    assert [t for t, _ in venue.looked_up] == [60.0, 150.0]
    assert order.status is OrderStatus.FILLED
    assert len([m for m in alert_lines(lines, order.order_id) if MADE_UP in m]) == 1
    broker.close()
