"""Regression (found by review, fixed): An operator halt cancels the strategy's working orders before bar n's on_data
(check_trading_state -> cancel_open_orders). That cancel is not journaled: a replay shows the
order still PENDING at bar n, and a deterministic re-quoting strategy is reported as diverging."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ml4t.backtest import OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bars(n):
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0 + i}) for i in range(n)]


class Requoter(Strategy):
    def __init__(self, journal_path=None):
        self.n = 0
        self.journal_path = journal_path

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if not broker.get_pending_orders("AAA"):
            broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)
        if self.n == 1 and self.journal_path is not None:  # the operator: ml4t-live halt
            set_trading_state(self.journal_path, "HALTED", "operator")


def run(strategy, venue, n, state_dir):
    broker = VenueBroker(venue, strategy_id="rq", state_dir=state_dir)
    return broker, LiveEngine(strategy, broker, ListFeed(bars(n)), session_dir=False,
                              settle_timeout=0.1, open_orders_at_end="keep")


def test_restart_after_an_operator_halt(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    path = tmp_path / "fake-DU0001-rq.journal"
    broker, engine = run(Requoter(path), venue, 3, tmp_path)
    engine.run()
    assert venue.cancelled  # the halt cancelled the working limit
    set_trading_state(path, "ACTIVE", "operator resumes")
    _, engine = run(Requoter(), venue, 4, tmp_path)
    engine.run()  # a warm restart of a deterministic strategy must not diverge
