"""Regression (found by review, fixed): Orders/cancels a strategy makes in on_end are journaled as commands at n = bars + 1
(link.closing()); a warm restart never calls on_end during the replay, so it reports them as a
divergence (fail closed) - and with on_divergence=continue the next live bar's first command
collides with their (n, seq) primary key."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ml4t.backtest import Strategy

from ml4t_live import LiveEngine
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bars(n):
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0 + i}) for i in range(n)]


class FlatAtEnd(Strategy):
    def on_data(self, timestamp, data, context, broker):
        pos = broker.get_position("AAA")
        if pos is None:
            broker.submit_order("AAA", 10)

    def on_end(self, broker):
        broker.close_position("AAA")  # a common "go home flat" pattern


def run(venue, n, state_dir, **kw):
    broker = VenueBroker(venue, strategy_id="fe", state_dir=state_dir, **kw)
    return LiveEngine(FlatAtEnd(), broker, ListFeed(bars(n)), session_dir=False,
                      settle_timeout=0.2).run()


def test_restart_after_a_clean_end_with_on_end_orders(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    run(venue, 2, tmp_path)
    run(venue, 4, tmp_path)  # same command again, the next session


def test_with_continue_the_next_bar_collides(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    run(venue, 2, tmp_path)
    # bar 3's first command is (3, 1): the on_end close of the first run holds that key
    result = run(venue, 4, tmp_path, on_divergence="continue")
    assert result.metrics["num_orders"] >= 1
