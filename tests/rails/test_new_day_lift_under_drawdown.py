"""A daily loss's REDUCING that lifts at a new day while the drawdown limit is exceeded stays
REDUCING, and the journal says why: the drawdown (not the day before's loss)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ml4t.backtest import Strategy

from ml4t_live import LiveEngine
from ml4t_live.journal import journal_path
from ml4t_live.journal.operator_access import read_only
from ml4t_live.risk import RiskConfig, TradingState
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
LIMITS = {"max_daily_loss": 500, "max_drawdown": 0.005}


def test_the_new_day_lift_and_the_drawdown_are_one_move_from_reducing_to_reducing():
    state = TradingState(RiskConfig.from_table(LIMITS))
    assert state.observe_equity(100_000.0, 0.0, day="d1") is None
    assert state.observe_equity(99_400.0, 0.0, day="d1").cause == "max_daily_loss"  # 600 > 500 (and 0.6% > 0.5%)
    moved = state.observe_equity(99_400.0, 0.0, day="d2")  # the loss starts over; the drawdown does not
    assert (moved.old, moved.new, moved.cause) == ("REDUCING", "REDUCING", "max_drawdown")
    assert (state.state, state.cause) == ("REDUCING", "max_drawdown")


class BuysOnce(Strategy):
    def __init__(self) -> None:
        self.n = 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)


def test_at_a_venue_the_journal_says_the_drawdown_holds_it_reducing_on_the_new_day():
    day1 = [bar(T0 + timedelta(minutes=i), {"AAA": p}) for i, p in enumerate([100.0, 100.0, 94.0])]
    day2 = [bar(T0 + timedelta(days=1, minutes=i), {"AAA": 94.0}) for i in range(2)]
    broker = VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="dd", risk=LIMITS)
    result = LiveEngine(BuysOnce(), broker, ListFeed(day1 + day2), session_dir=False, settle_timeout=0.5).run()
    assert result.metrics["trading_state"] == "REDUCING"
    journal = read_only(journal_path(None, "fake", "DU0001", "dd"))
    try:
        assert journal.meta("trading_state") == "REDUCING"
        assert journal.meta("trading_state_reason").startswith("max_drawdown"), journal.meta("trading_state_reason")
    finally:
        journal.close()
