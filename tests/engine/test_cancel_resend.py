"""A cancel the venue never answered is sent again during the run (aged, spaced, bounded).

The operator halts the strategy during its first bar; at the next bar the runtime cancels its
working limit order and the venue loses that cancel (the order keeps working there). The
broker's fill barrier sends the cancel again once it has gone unanswered ``after`` seconds (not
before), then at growing spacing, at most ``limit`` times; the venue's answer (cancelled, or filled
instead) ends the order exactly once. The end of a run asks once more, whatever the age. FakeVenue
(tests/support/fakes.py) is the remote side; time is a fake clock the strategy moves on each bar.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import drive, journal_of
from tests.engine.cancel_venues import TimedVenue
from tests.engine.fake_clock import Clock

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


class HaltedLimit(Strategy):
    """A limit buy (never reached) on its first bar, then the operator halts the strategy; each
    bar moves the clock on by ``step`` seconds."""

    def __init__(self, journal, clock: Clock, step: float) -> None:
        self.journal, self.clock, self.step = journal, clock, step
        self.order = None
        self.seen: list[OrderStatus] = []

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=90.0)
            set_trading_state(self.journal, "HALTED", "operator")
        self.seen.append(self.order.status)
        self.clock.now += self.step


def run(venue: TimedVenue, bars: int, tmp_path, step: float = 10.0, end: str = "keep"):
    strategy = HaltedLimit(tmp_path / "fake-DU0001-cr.journal", venue.clock, step)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)  # 30 s, then 60, 120 ...; 5 at most
    return strategy, broker, drive(strategy, broker, bars, end)


def test_a_lost_cancel_is_sent_again_after_30s_not_before_and_the_order_ends_cancelled(tmp_path):
    venue = TimedVenue(fill_on_wait=False)
    strategy, broker, lines = run(venue, 8, tmp_path)
    cid = strategy.order.order_id
    # the halt's cancel at bar 2 (t=10) is lost; bars 3 and 4 (20 s after it) do not repeat it
    assert venue.cancelled == [cid, cid] and venue.times == [10.0, 40.0]
    assert any(line.startswith("WARNING") and cid in line and "cancel asked again (1 of at most 5;" in line
               for line in lines), lines  # fmt: skip
    assert strategy.order.status is OrderStatus.CANCELLED and strategy.order.filled_quantity == 0
    assert not broker.book.cancelling and broker.left_at_venue == []
    assert venue.open_orders == [] and len(venue.placed) == 1  # the order itself never re-sent
    intents, positions, fills = journal_of(tmp_path)
    assert intents[cid]["status"] == "cancelled" and positions == {} and fills == 0


def test_a_fill_that_beats_the_repeated_cancel_is_applied_once(tmp_path):
    venue = TimedVenue(fill_on_wait=False, fill_instead=True)
    strategy, broker, _ = run(venue, 10, tmp_path)
    cid = strategy.order.order_id
    assert venue.cancelled == [cid, cid] and venue.times == [10.0, 40.0]  # refused: never again
    assert strategy.order.status is OrderStatus.FILLED and strategy.order.filled_quantity == 5
    assert broker.get_position("AAA").quantity == 5 and venue.positions["AAA"].quantity == 5
    intents, positions, fills = journal_of(tmp_path)
    assert intents[cid]["status"] == "filled" and positions == {"AAA": 5} and fills == 1
    assert broker.left_at_venue == [] and len(venue.placed) == 1


def test_resends_are_spaced_further_apart_and_bounded_then_alerted_once(tmp_path):
    venue = TimedVenue(fill_on_wait=False, lost=99)  # the venue answers no cancel at all
    strategy, broker, lines = run(venue, 70, tmp_path, step=30.0, end="cancel")
    cid = strategy.order.order_id
    # halt's cancel at t=30; again after 30, 60, 120, 240, 480 s; then no more (not even at the end)
    assert venue.times == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0]
    alerts = [line for line in lines if line.startswith("ERROR") and "ALERT" in line and cid in line]
    assert len(alerts) == 1 and "never confirmed its cancel (sent again 5 time(s)) and still listed it working" in alerts[0], alerts
    assert [o.order_id for o in broker.left_at_venue] == [cid]
    assert strategy.order.status is OrderStatus.CANCELLED  # as the strategy sees it, since the halt
    intents, _, _ = journal_of(tmp_path)
    assert intents[cid]["status"] not in ("cancelled", "filled")  # never confirmed: not ended


def test_the_end_of_run_sends_an_unanswered_cancel_once_more_and_waits_for_it(tmp_path):
    venue = TimedVenue(fill_on_wait=False)
    strategy, broker, lines = run(venue, 3, tmp_path, end="cancel")  # 20 s of run: nothing aged
    cid = strategy.order.order_id
    assert venue.cancelled == [cid, cid] and venue.times == [10.0, 30.0]  # the halt's; the end's
    assert any(line.startswith("WARNING") and cid in line and "cancel asked again" in line for line in lines)
    assert strategy.order.status is OrderStatus.CANCELLED and broker.left_at_venue == []
    intents, _, _ = journal_of(tmp_path)
    assert intents[cid]["status"] == "cancelled"
