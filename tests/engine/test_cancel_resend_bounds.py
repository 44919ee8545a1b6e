"""The repeats of unanswered cancels cost a bar a bounded time, a refused repeat of a cancel the
venue never carries out is followed to its ALERT, and what is logged and counted is what happened.

Same setting as tests/engine/test_cancel_resend.py: the operator halts the strategy during its
first bar, the next bar cancels its working limit orders, and the venue (FakeVenue,
tests/support/fakes.py) loses or refuses those cancels. The schedule's clock is a fake clock the
strategy moves 30 s each bar; the per-check budget's clock is a second fake clock that each cancel
the venue receives moves on 2 s (IB's ``cancel_wait`` when IB stays silent).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import CancelRefused
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import T0, HaltedLimits, run
from tests.engine.cancel_venues import CancelsSilently, FailsRepeatOnce, TimedVenue
from tests.engine.fake_clock import Clock
from tests.support.fakes import ListFeed, bar


@dataclass
class SlowVenue(TimedVenue):
    """Each cancel received takes 2 s of ``timer`` (the gateway waiting for an answer)."""

    timer: Clock = field(default_factory=Clock)

    def cancel(self, client_order_id):
        self.timer.now += 2.0
        super().cancel(client_order_id)


@dataclass
class RefusesRepeat(TimedVenue):
    """The first cancel is taken and never carried out (the order stays listed working, as an
    Alpaca order stuck ``pending_cancel``); every repeat is refused (Alpaca 422, IB 10148)."""

    def cancel(self, client_order_id):
        self.times.append(self.clock.now - 1000.0)
        self.cancelled.append(client_order_id)
        if len(self.cancelled) > 1:
            raise CancelRefused('order is already in "pending_cancel" state (HTTP 422)')


def test_one_check_sends_for_its_budget_and_carries_the_rest_to_the_next_bar(tmp_path):
    venue = SlowVenue(fill_on_wait=False, lost=99)
    strategy, _, lines = run(venue, 4, tmp_path, n=4, end="keep", timer=venue.timer)
    ids = [o.order_id for o in strategy.orders]
    # the halt cancels all 4 at t=30; at t=60 all 4 are due: 3 sends spend the 5 s budget (2 s
    # each), the 4th goes at the next bar (t=90), not in the same check
    assert Counter(t for t in venue.times if t <= 90.0) == {30.0: 4, 60.0: 3, 90.0: 1}, venue.times
    assert sorted(venue.cancelled[4:8]) == sorted(ids)  # each sent again once, none twice
    carried = [line for line in lines if "carried to the next check" in line]
    assert len(carried) == 1 and ids[3] in carried[0], carried


def test_a_cancel_carried_to_the_next_check_goes_first_there(tmp_path):
    venue = SlowVenue(fill_on_wait=False, lost=99)
    resends = CancelResends(after=0.0, clock=venue.clock, timer=venue.timer)  # every cancel due at each check
    strategy = HaltedLimits(tmp_path / "fake-DU0001-cr.journal", venue.clock, 4)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = resends
    feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(4)])
    LiveEngine(strategy, broker, feed, session_dir=False, settle_timeout=0.1, open_orders_at_end="keep").run()
    ids = [o.order_id for o in strategy.orders]
    at = {t: [c for c, s in zip(venue.cancelled, venue.times, strict=True) if s == t] for t in (60.0, 90.0)}
    assert at[60.0] == ids[:3]  # the 4th carried ...
    assert at[90.0][0] == ids[3]  # ... and sent first at the next check, not passed over again


def test_a_refused_repeat_of_a_cancel_the_venue_still_lists_is_followed_to_its_alert(tmp_path):
    venue = RefusesRepeat(fill_on_wait=False)
    strategy, broker, lines = run(venue, 70, tmp_path)
    cid = strategy.orders[0].order_id
    # the halt's cancel at t=30 is taken and never carried out; each repeat is refused, yet the
    # venue still lists the order: checked again at 60, 120, 240, 480, 960 s, then ALERTed
    assert venue.times == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0]
    alerts = [line for line in lines if line.startswith("ERROR") and "ALERT" in line and cid in line]
    assert len(alerts) == 1, alerts
    assert "sent again 5 time(s), refused 5" in alerts[0] and "still listed it working" in alerts[0]
    assert [o.order_id for o in broker.left_at_venue] == [cid]


def test_an_order_the_venue_no_longer_lists_is_never_counted_as_sent_again(tmp_path):
    venue = CancelsSilently(fill_on_wait=False)
    strategy, _, lines = run(venue, 70, tmp_path)
    cid = strategy.orders[0].order_id
    assert venue.times == [30.0]  # only the halt's cancel: the order left the open orders
    alerts = [line for line in lines if line.startswith("ERROR") and "ALERT" in line and cid in line]
    assert len(alerts) == 1, alerts
    assert "sent again 0 time(s)" in alerts[0] and "no longer lists it working" in alerts[0], alerts
    assert any("no longer lists it as working: not sent again" in line for line in lines if cid in line)


def test_a_repeat_that_failed_is_not_logged_as_sent(tmp_path):
    venue = FailsRepeatOnce(fill_on_wait=False)
    strategy, _, lines = run(venue, 5, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    # the halt's; the failed repeat (it counts as the check at 60 s); the next check, 60 s later
    assert venue.times == [30.0, 60.0, 120.0]
    said = [line for line in lines if cid in line and "again (" in line]
    assert len(said) == 1 and "(1 of at most 5" in said[0], said  # only the repeat that went out
