"""Repeats that fail, the per-check budget's start, and a runtime cancel the venue refused while
it still works the order.

Same setting as tests/engine/test_cancel_resend_bounds.py: the operator halts the strategy during
its first bar, the next bar cancels its working limit orders (at t=30 s of the schedule's fake
clock, which the strategy moves 30 s per bar), and the venue (FakeVenue, tests/support/fakes.py)
loses, refuses or fails those cancels. The budget's fake clock moves with the venue's calls.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ml4t.backtest import OrderStatus

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import VenueError
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import HaltedLimits, alert_lines, drive, run
from tests.engine.cancel_venues import StuckPendingCancel, TimedVenue
from tests.engine.fake_clock import Clock


@dataclass
class FailingHead(TimedVenue):
    """Loses every cancel (the orders keep working). The open-orders read takes ``snap`` s of
    ``timer``, each cancel 2 s; every repeat of the FIRST order's cancel fails (``VenueError``:
    Alpaca's DELETE answered 5xx through its retries) after ``head`` s more."""

    timer: Clock = field(default_factory=Clock)
    snap: float = 6.0
    head: float = 0.0
    fail_head: bool = True
    fails: int = 0

    def snapshot(self):
        self.timer.now += self.snap
        return super().snapshot()

    def cancel(self, client_order_id):
        self.timer.now += 2.0
        first = self.placed[0].client_order_id
        if self.fail_head and client_order_id == first and client_order_id in self.cancelled:
            self.timer.now += self.head
            self.fails += 1
            raise VenueError(f"cancel of {client_order_id}: HTTP 503 (after 4 tries)")
        super().cancel(client_order_id)


def test_a_repeat_that_keeps_failing_blocks_no_other_and_ends_in_its_alert(tmp_path):
    # the read alone spends the 5 s budget: one send per check; before, the failing head stayed
    # first (its failure did not move it), took that send every check, and none ever reached the ALERT
    venue = FailingHead(fill_on_wait=False, lost=999)
    strategy, broker, lines = run(venue, 80, tmp_path, n=3, end="keep", timer=venue.timer)
    head, *rest = [o.order_id for o in strategy.orders]
    sent = Counter(venue.cancelled)
    assert venue.fails == 5  # the failures count toward its schedule: 5 checks, then no more
    alert = alert_lines(lines, head)
    assert len(alert) == 1 and "5 send(s) failed" in alert[0] and "still listed it working" in alert[0], alert
    for cid in rest:  # carried, yet each had its turn: the halt's cancel and 5 repeats, then the ALERT
        assert sent[cid] == 6, sent
        assert len(alert_lines(lines, cid)) == 1
    assert sorted(o.order_id for o in broker.left_at_venue) == sorted([head, *rest])


def test_a_slow_failing_repeat_goes_behind_the_others(tmp_path):
    # the read is fast, the head's failing repeat takes 6 s (Alpaca's retries of a 5xx): before,
    # it went first at every check and spent the budget, and the others were carried for good
    venue = FailingHead(fill_on_wait=False, lost=999, snap=0.2, head=4.0)
    strategy, _, lines = run(venue, 80, tmp_path, n=3, end="keep", timer=venue.timer)
    head, *rest = [o.order_id for o in strategy.orders]
    sent = Counter(venue.cancelled)
    assert venue.fails == 5
    assert all(sent[cid] == 6 for cid in rest), sent
    assert all(len(alert_lines(lines, cid)) == 1 for cid in (head, *rest))


def test_the_budget_counts_from_the_start_of_the_check_the_read_included(tmp_path):
    # read 4 s, each repeat 2 s, budget 5 s: the read and one send (6 s) spend it; counted from
    # after the read, three sends (2, 4 < 5, 6) would go in that check
    venue = FailingHead(fill_on_wait=False, lost=999, snap=4.0, fail_head=False)
    run(venue, 3, tmp_path, n=3, end="keep", timer=venue.timer)
    assert Counter(venue.times) == {30.0: 3, 60.0: 1, 90.0: 2}, venue.times


def test_a_halted_cancel_refused_for_an_order_still_working_is_followed_to_its_alert(tmp_path):
    venue = StuckPendingCancel(fill_on_wait=False)
    strategy, broker, lines = run(venue, 70, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    # the halt's cancel at t=30 is refused; not sent again at each bar (before: every bar, INFO
    # only, no ALERT) but checked on the schedule: 60, 120, 240, 480, 960 s, then ALERTed
    assert venue.times == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0]
    warned = [line for line in lines if line.startswith("WARNING") and "stays pending for the strategy" in line and cid in line]
    assert len(warned) == 1, warned
    alerts = alert_lines(lines, cid)
    assert len(alerts) == 1 and "refused its cancel" in alerts[0] and "still listed it working" in alerts[0]
    # the venue's own words say why (here: it is cancelling the order already; IB's 10148 says
    # "state: PendingCancel" for a cancel it holds until the open)
    assert 'the venue\'s last refusal: order is already in "pending_cancel" state (HTTP 422)' in alerts[0]
    assert strategy.orders[0].status is OrderStatus.PENDING  # it works at the venue: pending, as before
    assert [o.order_id for o in broker.left_at_venue] == [cid]


def test_a_refused_halted_cancel_the_venue_later_takes_ends_the_order_once(tmp_path):
    venue = StuckPendingCancel(fill_on_wait=False, take_after=2)
    strategy, broker, lines = run(venue, 12, tmp_path, end="keep")
    order = strategy.orders[0]
    assert venue.times == [30.0, 60.0, 120.0]  # refused, refused, taken (and confirmed)
    assert order.status is OrderStatus.CANCELLED
    assert not broker.left_at_venue and not broker.book.cancelling
    assert not alert_lines(lines, order.order_id)


class HaltedThenResumed(HaltedLimits):
    """HaltedLimits (one order), the operator resuming once the clock reaches ``resume_at``."""

    def __init__(self, journal, clock, resume_at: float) -> None:
        super().__init__(journal, clock, 1)
        self.resume_at = resume_at

    def on_data(self, timestamp, data, context, broker):
        super().on_data(timestamp, data, context, broker)
        if self.clock.now - 1000.0 == self.resume_at:
            set_trading_state(self.journal, "ACTIVE", "operator")


def test_a_resume_stops_following_the_halts_refused_cancel(tmp_path):
    venue = StuckPendingCancel(fill_on_wait=False, take_after=2)  # the third cancel would be taken
    strategy = HaltedThenResumed(tmp_path / "fake-DU0001-cr.journal", venue.clock, resume_at=90.0)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(strategy, broker, 8, "keep")
    order = strategy.orders[0]
    # the halt's cancel (30) and the first check (60) refused; the resume (at 90) withdraws the
    # follow-up: the check due at 120 would have cancelled the resumed strategy's order
    assert venue.times == [30.0, 60.0], venue.times
    assert order.status is OrderStatus.PENDING and order.order_id not in broker.cancel_resends.refused_open
    assert [line for line in lines if line.startswith("INFO") and "no longer followed" in line and order.order_id in line]


def test_the_end_of_the_run_asks_again_after_the_halts_follow_up_ended_in_its_alert(tmp_path):
    venue = StuckPendingCancel(fill_on_wait=False, take_after=6)  # the seventh cancel is taken
    strategy, broker, lines = run(venue, 70, tmp_path, end="cancel")
    order = strategy.orders[0]
    assert venue.times[:6] == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0] and len(alert_lines(lines, order.order_id)) == 1
    # the end of the run is another request: its cancel goes out (before: skipped as followed)
    assert len(venue.times) == 7 and venue.times[6] > 1920.0, venue.times
    assert order.status is OrderStatus.CANCELLED and not broker.left_at_venue


class HaltedAndFlattenedEachBar(HaltedLimits):
    """HaltedLimits (one order); from the next bar on, the operator's flatten runs at every bar
    (as when its closing order keeps being rejected and the request stays set)."""

    def __init__(self, journal, clock) -> None:
        super().__init__(journal, clock, 1)

    def on_data(self, timestamp, data, context, broker):
        if self.orders:
            broker.flatten_owned("operator", wait=0.0)
        super().on_data(timestamp, data, context, broker)


@dataclass
class CountsReads(StuckPendingCancel):
    """StuckPendingCancel that counts the reads of its open orders."""

    reads: int = 0

    def snapshot(self):
        self.reads += 1
        return super().snapshot()


def test_a_flatten_retried_at_every_bar_does_not_restart_a_refused_cancels_follow_up(tmp_path):
    venue = CountsReads(fill_on_wait=False)
    strategy = HaltedAndFlattenedEachBar(tmp_path / "fake-DU0001-cr.journal", venue.clock)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(strategy, broker, 70, "keep")
    cid = strategy.orders[0].order_id
    # bounded as without the flatten (a review probe of 382947c: 207 cancels, 3 a bar, no ALERT)
    assert len(venue.times) <= 8, venue.times
    assert len(alert_lines(lines, cid)) == 1
    # nor reads the venue at every bar once its tries are used (a review probe of d4de163: the
    # flatten's final checks read and looked up at every bar, 62 reads in 60 bars): at most the
    # 5 checks, then one per 480 s of the 2,100 s, and the start's
    assert venue.reads <= 12, venue.reads


@dataclass
class UnreadableOpenOrders(TimedVenue):
    """Loses the halt's cancel (the order keeps working); from then on every read of its open
    orders fails (IB's ``reqOpenOrders`` timing out, Alpaca's ``GET /v2/orders`` answered 5xx)."""

    reads_failed: int = 0

    def snapshot(self):
        if self.cancelled:
            self.reads_failed += 1
            raise VenueError("GET /v2/orders: HTTP 503 (after 4 tries)")
        return super().snapshot()


def test_a_cancel_whose_checks_can_never_read_the_open_orders_ends_in_its_alert(tmp_path):
    # before, a failed read was no check: the cancel stayed due at every bar, the read failed at
    # every bar (a WARNING each), and the ALERT never came
    venue = UnreadableOpenOrders(fill_on_wait=False, lost=999)
    strategy, broker, lines = run(venue, 80, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.cancelled == [cid]  # the halt's cancel; nothing sent again without a read
    alert = alert_lines(lines, cid)
    assert len(alert) == 1, alert
    assert "unreadable at 5 check(s)" in alert[0] and "whether it still works there is unknown" in alert[0]
    unread = [line for line in lines if "open orders could not be read" in line]
    # the checks at 60, 120, 240, 480 and 960 s, the ALERT's at 1440 s, then every 480 s (1920, 2400)
    assert len(unread) == 8, unread
    assert [o.order_id for o in broker.left_at_venue] == [cid]


@dataclass
class UnreadableForAWhile(UnreadableOpenOrders):
    """UnreadableOpenOrders whose open orders can be read again from ``back`` s on (fake clock)."""

    back: float = 1900.0

    def snapshot(self):
        if self.clock.now - 1000.0 >= self.back:
            return TimedVenue.snapshot(self)
        return super().snapshot()


def test_after_an_outage_longer_than_the_schedule_the_cancel_is_sent_again_once_the_venue_answers(tmp_path):
    # a review probe of 3faa186: the reads failed through the five checks, the ALERT came, and once
    # the venue answered again the cancel was never sent again although the venue still worked it
    venue = UnreadableForAWhile(fill_on_wait=False, lost=999)
    strategy, _, lines = run(venue, 80, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert len(alert_lines(lines, cid)) == 1
    # the reads at 60 ... 1440 s failed; from 1920 s the venue answers: the cancel is sent again
    # at each later check (1920, 2400 s)
    assert venue.times == [30.0, 1920.0, 2400.0], venue.times
