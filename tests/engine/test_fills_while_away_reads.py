"""What an order working at a warm restart filled while away, when the venue cannot say
(``executions_since`` raises): read again at the next reconciliations, bounded.

A read that gets no answer is tried at most ``AWAY_READS`` times in all, then given up with an
ERROR ``ALERT`` naming the order and what the venue listed it filled; one the gateway marks
permanent (``permanent``: no later read can succeed, e.g. an Alpaca chain longer than the walk
follows) is given up at once. Before, the read was tried again at every reconciliation forever
(each a WARNING and the venue's requests). FakeVenue is the remote side.
"""

from __future__ import annotations

from ml4t.backtest import OrderSide, OrderType

from ml4t_live import LiveEngine
from ml4t_live.errors import VenueError
from ml4t_live.protocols import VenueOrder
from ml4t_live.restart_reads import AWAY_READS
from ml4t_live.venue_broker import VenueBroker
from tests.engine.warm_restart_support import Stepper, bars, run
from tests.support.fakes import FakeVenue, ListFeed


class _Permanent(VenueError):
    permanent = True


class _Unreadable(FakeVenue):
    """Lists the strategy's limit working (2 of 5 filled) and cannot say what it filled while
    away: each ``executions_since`` raises ``failure``."""

    def __init__(self, failure: type[VenueError], **kw) -> None:
        super().__init__(**kw)
        self.failure = failure
        self.reads: list[str] = []

    def executions_since(self, client_order_id, filled, avg_price=None):
        self.reads.append(client_order_id)
        raise self.failure("no answer")


def _restarted(venue: _Unreadable):
    first = Stepper()
    run(first, venue, bars(3), open_orders_at_end="keep")  # killed with bar 2's limit working
    cid = first.limit.order_id
    venue.open_orders = [VenueOrder(cid, "V9", "AAA", OrderSide.BUY, 5, 2, OrderType.LIMIT, "open", 50.0)]
    broker = VenueBroker(venue, strategy_id="stepper")
    LiveEngine(Stepper(), broker, ListFeed(bars(3)), session_dir=False, settle_timeout=0.5,
               open_orders_at_end="keep").run()  # fmt: skip
    return broker, cid


def _alerts(logs, cid):
    return [m for level, m in logs if level == "ERROR" and m.startswith("ALERT") and cid in m]


def test_a_read_without_answer_is_given_up_after_the_bound_with_an_alert(logs):
    venue = _Unreadable(VenueError, fill_on_wait=True)
    broker, cid = _restarted(venue)
    assert venue.reads[:2] == [cid, cid] and len(venue.reads) < AWAY_READS  # the restart's, the run's
    while len(venue.reads) < AWAY_READS:
        assert not _alerts(logs, cid)
        broker.own.check_soon()
        broker.reconcile_if_due()
    (alert,) = _alerts(logs, cid)
    assert "2 filled" in alert and "check the venue" in alert
    assert "its replace chain was not checked against the book's order" in alert, alert
    assert not venue.cancelled  # (the listed order asks no more than the book's: left working)
    broker.own.check_soon()
    broker.reconcile_if_due()
    assert len(venue.reads) == AWAY_READS  # given up: never read again


def test_a_listed_order_asking_more_than_the_book_is_cancelled_while_its_read_fails(logs):
    """The venue lists the order asking 9 (2 filled of its own) where the book's order is 5 with
    2 filled: whatever the orders it replaced filled, it would buy past the book (a change the
    venue took just before a crash, never journaled). Failed before: left working, buying on
    while the read got no answer. Now cancelled at the first failed read, once, with a WARNING;
    the give-up ALERT says so."""
    venue = _Unreadable(VenueError, fill_on_wait=True)
    first = Stepper()
    run(first, venue, bars(3), open_orders_at_end="keep")
    cid = first.limit.order_id
    venue.open_orders = [VenueOrder(cid, "V9", "AAA", OrderSide.BUY, 9, 2, OrderType.LIMIT, "open", 50.0)]
    broker = VenueBroker(venue, strategy_id="stepper")
    LiveEngine(Stepper(), broker, ListFeed(bars(3)), session_dir=False, settle_timeout=0.5,
               open_orders_at_end="keep").run()  # fmt: skip
    while len(venue.reads) < AWAY_READS:
        broker.own.check_soon()
        broker.reconcile_if_due()
    assert venue.cancelled.count(cid) == 1, venue.cancelled
    (warning,) = [m for level, m in logs if level == "WARNING" and "asks more than the book's order" in m]
    assert "9 on top of at least 0 filled before it; the book's order is 5" in warning and "cancelled" in warning
    assert "ends cancelled with what the book holds of it" in warning, warning  # (not 'with what it filled')
    (alert,) = _alerts(logs, cid)
    assert "the listed order asked more than the book's order: cancelled at the restart" in alert, alert


def test_a_permanent_failure_is_given_up_at_once(logs):
    venue = _Unreadable(_Permanent, fill_on_wait=True)
    broker, cid = _restarted(venue)
    assert venue.reads == [cid]
    assert len(_alerts(logs, cid)) == 1
    broker.own.check_soon()
    broker.reconcile_if_due()
    assert venue.reads == [cid]


class _Changer(Stepper):
    """Stepper, but on its 4th bar it re-prices its limit instead of cancelling it."""

    def on_data(self, timestamp, data, context, broker):
        if self.n == 3 and self.limit is not None:
            self.n += 1
            self.changed = broker.update_order(self.limit.order_id, limit_price=51.0)
            return
        super().on_data(timestamp, data, context, broker)


def test_a_change_of_an_order_whose_fills_while_away_are_unread_is_refused(logs):
    venue = _Unreadable(VenueError, fill_on_wait=True)
    first = Stepper()
    run(first, venue, bars(3), open_orders_at_end="keep")
    cid = first.limit.order_id
    venue.open_orders = [VenueOrder(cid, "V9", "AAA", OrderSide.BUY, 5, 2, OrderType.LIMIT, "open", 50.0)]
    placed = len(venue.placed)
    second = _Changer()
    LiveEngine(second, VenueBroker(venue, strategy_id="stepper"), ListFeed(bars(4)), session_dir=False,
               settle_timeout=0.5, open_orders_at_end="keep").run()  # fmt: skip
    assert second.changed is False and len(venue.placed) == placed  # nothing sent
    assert any(level == "WARNING" and f"change of {cid} refused" in m and "while away" in m for level, m in logs)


def test_a_failed_restart_read_makes_the_next_reconciliation_due(logs):
    """The restart's read fails: the next reconciliation is due at once (it reads again there),
    also when a reconciliation has just run (here: the end of the first run's, with the next one
    ``reconcile_every`` away)."""
    venue = _Unreadable(VenueError, fill_on_wait=True)
    broker, cid = _restarted(venue)
    assert venue.reads[-1] == cid and not broker.own.due()  # the end of run's reconciliation: the next in reconcile_every
    broker._apply_fills_while_away(venue.open_orders)  # the restart's read, failing
    assert broker.own.due()


class _Forgets(_Unreadable):
    """_Unreadable, noting each ``forget_away`` (the broker giving up the read)."""

    def __init__(self, failure: type[VenueError], **kw) -> None:
        super().__init__(failure, **kw)
        self.forgotten: list[str] = []

    def forget_away(self, client_order_id):
        self.forgotten.append(client_order_id)


def test_a_read_given_up_is_forgotten_by_the_gateway(logs):
    """The gateway keeps the order's view for the read (Alpaca: ``WhileAway.unread``) until it
    is told the broker gave up. Before, it was never told: the view stayed for the session."""
    venue = _Forgets(_Permanent, fill_on_wait=True)
    _, cid = _restarted(venue)
    assert venue.forgotten == [cid] and len(_alerts(logs, cid)) == 1


def test_an_order_listed_twice_is_read_once(logs):
    """A replace pending at the restart: Alpaca lists the old order and its replacement, both
    ours under one id. Failed before: each listed entry was read, so the order's chain was walked
    twice and, unreadable, given up with two ALERTs."""
    venue = _Unreadable(_Permanent, fill_on_wait=True)
    first = Stepper()
    run(first, venue, bars(3), open_orders_at_end="keep")
    cid = first.limit.order_id
    venue.open_orders = [VenueOrder(cid, "V9", "AAA", OrderSide.BUY, 5, 2, OrderType.LIMIT, "pending_replace", 50.0),
                         VenueOrder(cid, "V10", "AAA", OrderSide.BUY, 5, 0, OrderType.LIMIT, "pending_new", 50.0)]  # fmt: skip
    LiveEngine(Stepper(), VenueBroker(venue, strategy_id="stepper"), ListFeed(bars(3)), session_dir=False,
               settle_timeout=0.5, open_orders_at_end="keep").run()  # fmt: skip
    assert venue.reads == [cid]
    assert len(_alerts(logs, cid)) == 1

