"""The follow-up of an unconfirmed cancel continues across warm restarts (journal meta).

Same setting as tests/engine/test_cancel_resend_bounds.py: the operator halts the strategy during
its first bar, the next bar (t=30 s on the fake clock the strategy moves 30 s each bar) cancels its
working limit order, and the venue (FakeVenue, tests/support/fakes.py) loses every cancel: the
order keeps working there. A run stopped early (``keep``: as a killed process leaves it) is
restarted from the same state dir, its journal holding the follow-up. A halt's cancel the venue
refuses (the order stays pending for the strategy) is followed on after a restart only while the
strategy is still HALTED.

Before the follow-up was journaled, a restart started the schedule from zero: a process restarted
more often than the schedule lasts re-sent the cancel at each restart and never reached the ALERT,
and an order already ALERTed was followed (and ALERTed) all over again.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import pytest
from ml4t.backtest import OrderStatus, OrderType

from ml4t_live.cancel_follow_up import FOLLOW_UP_KEY
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import CancelRefused, VenueError
from ml4t_live.journal.operator_access import read_only, set_trading_state
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import HaltedLimits, alert_lines, drive, run
from tests.engine.cancel_venues import (
    FailsRepeatOnce,
    LooksUp,
    StuckPendingCancel,
    TimedVenue,
)

JOURNAL = "fake-DU0001-cr.journal"


def follow_up(tmp_path) -> dict:
    journal = read_only(tmp_path / JOURNAL)
    try:
        return json.loads(journal.meta(FOLLOW_UP_KEY) or "{}")
    finally:
        journal.close()


def test_a_restart_continues_the_checks_and_the_alert_sums_both_runs(tmp_path):
    venue = FailsRepeatOnce(fill_on_wait=False, lost=99)
    strategy, _, lines = run(venue, 5, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    # the halt's cancel (t=30); check 1 at t=60 (its send failed); check 2 at t=120 (sent)
    assert venue.times == [30.0, 60.0, 120.0] and not alert_lines(lines, cid)
    assert follow_up(tmp_path)[cid] == {"checks": 2, "resends": 1, "refused": 0, "failed": 1, "unread": 0,
                                        "listed": True, "ended": False, "found_filled": False}  # fmt: skip
    first = len(venue.times)
    _, broker, lines = run(venue, 70, tmp_path, end="keep")
    again = venue.times[first:]
    # check 3 at the restart (due at once), then 4 and 5 spaced 240 and 480 s: 3 sends, not 5
    assert len(again) == 3, venue.times
    assert again[1] - again[0] >= 240.0 and again[2] - again[1] >= 480.0, venue.times
    alerts = alert_lines(lines, cid)
    assert len(alerts) == 1, alerts  # the restart's 3 checks complete the 5: the ALERT comes
    assert "(sent again 4 time(s), 1 send(s) failed) and still listed it working" in alerts[0], alerts
    assert "after the restart" not in alerts[0]
    assert [o.order_id for o in broker.left_at_venue] == [cid]
    # checked on every 480 s after the ALERT (nothing sent: its 5 tries are used)
    assert follow_up(tmp_path)[cid]["ended"] is True and follow_up(tmp_path)[cid]["checks"] > 5


def test_an_order_alerted_before_the_restart_is_alerted_once_at_it_and_not_sent_again(tmp_path):
    venue = TimedVenue(fill_on_wait=False, lost=99)
    strategy, _, lines = run(venue, 70, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.times == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0] and len(alert_lines(lines, cid)) == 1
    _, broker, lines = run(venue, 70, tmp_path, end="cancel")
    assert venue.times == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0], "the restart sent the cancel again"
    alerts = alert_lines(lines, cid)
    assert len(alerts) == 1, alerts
    assert "(sent again 5 time(s)) and still listed it working" in alerts[0], alerts
    assert "still unconfirmed after the restart" in alerts[0], alerts
    assert [o.order_id for o in broker.left_at_venue] == [cid]


@pytest.mark.parametrize("meta", ["absent", "unreadable", "bad count"])
def test_a_journal_without_the_follow_up_starts_it_over_as_before(meta, tmp_path):
    venue = TimedVenue(fill_on_wait=False, lost=99)
    strategy, _, _ = run(venue, 5, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.times == [30.0, 60.0, 120.0] and cid in follow_up(tmp_path)
    with sqlite3.connect(tmp_path / JOURNAL) as db:  # a journal written before the follow-up was kept
        if meta == "absent":
            db.execute("DELETE FROM meta WHERE key = ?", (FOLLOW_UP_KEY,))
        elif meta == "unreadable":
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps([cid]), FOLLOW_UP_KEY))
        else:  # (a review probe: int("two") raised during the warm restart)
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps({cid: {"checks": "two"}}), FOLLOW_UP_KEY))
    db.close()
    _, _, lines = run(venue, 70, tmp_path, end="keep")
    assert len(venue.times) == 3 + 5, venue.times  # 5 checks after the restart, as a fresh follow-up
    alerts = alert_lines(lines, cid)
    assert len(alerts) == 1 and "(sent again 5 time(s)) and still listed it working" in alerts[0], alerts
    assert "after the restart" not in alerts[0]
    unread = [line for line in lines if line.startswith("WARNING") and "follow-up" in line and "could not be read" in line]
    assert len(unread) == (meta != "absent"), unread


def test_an_order_whose_cancel_is_confirmed_leaves_the_journaled_follow_up(tmp_path):
    venue = TimedVenue(fill_on_wait=False, lost=3)  # the halt's and 2 repeats lost; the 3rd confirmed
    strategy, _, _ = run(venue, 5, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.times == [30.0, 60.0, 120.0] and follow_up(tmp_path)[cid]["checks"] == 2
    _, broker, _ = run(venue, 4, tmp_path, end="keep")
    assert len(venue.times) == 4 and not broker.book.cancelling  # confirmed at the restart's check
    assert follow_up(tmp_path) == {}


def test_a_refused_halted_cancel_continues_its_checks_after_a_restart_while_halted(tmp_path):
    venue = StuckPendingCancel(fill_on_wait=False)  # every cancel refused, the order listed working
    strategy, _, _ = run(venue, 5, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.times == [30.0, 60.0, 120.0] and follow_up(tmp_path)[cid]["reason"] == "trading halted"
    second, _, lines = run(venue, 70, tmp_path, end="keep")
    # still HALTED: the restart's check is the 3rd, not a new halt cancel and 5 more checks
    assert len(venue.times) == 3 + 3, venue.times
    alerts = alert_lines(lines, cid)
    assert len(alerts) == 1 and "refused its cancel (trading halted; sent again 5 time(s), refused 5)" in alerts[0]
    assert second.orders[0].status is OrderStatus.PENDING


def test_the_alert_again_after_a_restart_quotes_the_venues_refusal_from_the_journal(tmp_path):
    """ALERTed before the restart, its tries used: nothing is sent after it, so the venue's own
    words can only come from the journal."""
    venue = StuckPendingCancel(fill_on_wait=False)  # every cancel refused, the order listed working
    strategy, _, lines = run(venue, 70, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    refusal = 'the venue\'s last refusal: order is already in "pending_cancel" state (HTTP 422)'
    assert len(alert_lines(lines, cid)) == 1 and refusal in alert_lines(lines, cid)[0]
    sent = len(venue.times)
    _, _, lines = run(venue, 72, tmp_path, end="keep")
    assert len(venue.times) == sent  # no tries left: nothing sent after the restart
    (again,) = alert_lines(lines, cid)
    assert refusal in again and again.endswith("still unconfirmed after the restart (ALERTed before it)")


class ReplaysWithoutHalting(HaltedLimits):
    """HaltedLimits' orders, without halting again (the operator resumed while it was down)."""

    def on_data(self, timestamp, data, context, broker):
        if not self.orders:
            self.orders = [broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=90.0 - i)
                           for i in range(self.n)]  # fmt: skip
        self.clock.now += 30.0


def test_a_resume_while_down_leaves_the_refused_cancel_unfollowed_after_the_restart(tmp_path):
    venue = StuckPendingCancel(fill_on_wait=False)
    run(venue, 5, tmp_path, end="keep")
    path = tmp_path / JOURNAL
    set_trading_state(path, "ACTIVE", "operator")
    strategy = ReplaysWithoutHalting(path, venue.clock, 1)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    drive(strategy, broker, 8, "keep")
    assert venue.times == [30.0, 60.0, 120.0], "the resumed strategy's order was cancelled again"
    assert strategy.orders[0].status is OrderStatus.PENDING and follow_up(tmp_path) == {}


def test_an_unlisted_cancelling_order_the_restarts_look_up_finds_open_gets_one_check_and_its_cancel(tmp_path):
    # the venue's list leaves the order out, a look-up by client order id says it works. Reported:
    # two checks counted at the restart. Found: one check, but spent before the look-up, as "no
    # longer listed": nothing sent at the restart, and "listed" journaled false
    venue = LooksUp(fill_on_wait=False, answer="open")
    strategy, _, _ = run(venue, 5, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.times == [30.0, 60.0, 120.0] and follow_up(tmp_path)[cid]["checks"] == 2
    run(venue, 7, tmp_path, end="keep")  # the 5 bars replayed (to t=300), 2 live ones
    assert venue.times == [30.0, 60.0, 120.0, 300.0], "the restart's check did not send the cancel"
    assert follow_up(tmp_path)[cid] == {"checks": 3, "resends": 3, "refused": 0, "failed": 0, "unread": 0,
                                        "listed": True, "ended": False, "found_filled": False}  # fmt: skip


def test_the_alert_after_a_restart_that_found_the_unlisted_order_open_counts_its_five_tries(tmp_path):
    venue = LooksUp(fill_on_wait=False, answer="open")
    strategy, _, _ = run(venue, 5, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    _, _, lines = run(venue, 70, tmp_path, end="keep")
    # checks 3, 4, 5 at the restart (t=300), 240 and 480 s later; the ALERT at the next one
    assert venue.times == [30.0, 60.0, 120.0, 300.0, 540.0, 1020.0], venue.times
    alerts = alert_lines(lines, cid)
    assert len(alerts) == 1 and "(sent again 5 time(s)) and still listed it working" in alerts[0], alerts


@dataclass
class RefusesThenLoses(TimedVenue):
    """Refuses the first ``refuse`` cancels (Alpaca 422 ``pending_cancel``; the order listed
    working); takes the later ones and loses them (never carried out, never confirmed)."""

    refuse: int = 4

    def cancel(self, client_order_id):
        if len(self.times) < self.refuse:
            self.times.append(self.clock.now - 1000.0)
            self.cancelled.append(client_order_id)
            raise CancelRefused('order is already in "pending_cancel" state (HTTP 422)')
        super().cancel(client_order_id)


class Killed(BaseException):
    """The process dies here (as ``kill -9``: no check, no end of run writes the journal)."""


class HaltedThenCancelling(HaltedLimits):
    """HaltedLimits (one order) that cancels it itself in its 10th bar (t=270 s in the first
    run); ``kill``: the process dies right after that ``cancel_order``."""

    def __init__(self, journal, clock, kill: bool) -> None:
        super().__init__(journal, clock, 1)
        self.kill = kill
        self.bars = 0

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.bars == 10:
            assert broker.cancel_order(self.orders[0].order_id)
            if self.kill:
                raise Killed
        super().on_data(timestamp, data, context, broker)


def test_a_crash_after_the_strategys_cancel_of_a_followed_refused_order_starts_its_follow_up_afresh(tmp_path):
    # the halt's cancel (t=30) and the checks at 60, 120, 240 s are refused (the order stays
    # pending, followed); the strategy's own cancel at 270 s is taken (and lost), and the process
    # dies before the next check writes the follow-up. Before, the restart restored the refused
    # cancel's 3 checks and 3 refused tries onto the strategy's new cancel: 2 more sends, then
    # an ALERT "sent again 5 time(s), refused 3"
    venue = RefusesThenLoses(fill_on_wait=False, lost=99)
    path = tmp_path / JOURNAL
    first = HaltedThenCancelling(path, venue.clock, kill=True)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    with pytest.raises(Killed):
        drive(first, broker, 70, "keep")
    cid = first.orders[0].order_id
    assert venue.times == [30.0, 60.0, 120.0, 240.0, 270.0]
    assert follow_up(tmp_path)[cid]["reason"] == "trading halted"  # as the killed process left it
    second = HaltedThenCancelling(path, venue.clock, kill=False)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(second, broker, 70, "keep")
    # the restart (t=570: 10 bars replayed) checks the strategy's cancel at once, then 60, 120,
    # 240 and 480 s later: 5 repeats, then the ALERT (before: 570 and 1050 s only)
    assert venue.times[5:] == [570.0, 630.0, 750.0, 990.0, 1470.0], venue.times
    alerts = alert_lines(lines, cid)
    assert len(alerts) == 1 and "(sent again 5 time(s)) and still listed it working" in alerts[0], alerts
    assert second.orders[0].status is OrderStatus.CANCELLED


@dataclass
class LookUpFailsAtRestart(LooksUp):
    """LooksUp (finds the order working) whose ``fail_at``-th look-up fails (HTTP 503)."""

    fail_at: int = 3

    def lookup(self, cids):
        if len(self.looked_up) + 1 == self.fail_at:
            self.looked_up.append(list(cids))
            raise VenueError("GET /v2/orders:by_client_order_id: HTTP 503 (after 4 tries)")
        return super().lookup(cids)


def test_a_restart_whose_look_up_failed_sends_the_cancel_once_the_retried_look_up_finds_it_working(tmp_path):
    """The restart's look-up fails, so its check counts the unlisted order as no longer listed
    (nothing sent); the look-up retried at the next reconciliation finds it working: its cancel
    is checked and sent again at the next check, not a 240 s spacing later, its counts kept."""
    venue = LookUpFailsAtRestart(fill_on_wait=False, answer="open")
    strategy, _, _ = run(venue, 5, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.times == [30.0, 60.0, 120.0] and len(venue.looked_up) == 2
    run(venue, 8, tmp_path, end="keep")  # 210 s: less than the 240 s spacing
    assert len(venue.looked_up) >= 4  # the restart's (failed), then the reconciliation's
    assert len(venue.times) == 4, venue.times  # sent again after the retried look-up
    follow = follow_up(tmp_path)[cid]
    assert (follow["checks"], follow["resends"], follow["listed"]) == (4, 3, True), follow
