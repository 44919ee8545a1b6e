"""``ml4t-live halt`` / ``resume`` from another process, against a running engine (FakeVenue)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def operator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ml4t_live", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


class Buyer(Strategy):
    """A working limit order on bar 1, then a market buy on every bar; the operator halts the
    strategy from another process during bar 2."""

    def __init__(self, halt_on: int = 2) -> None:
        self.halt_on = halt_on
        self.n = 0
        self.orders = []
        self.limit = None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.limit = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)
        if self.n == self.halt_on:
            self.halt = operator("halt", "--strategy-id", "buyer", "--reason", "fat finger")
        self.orders.append(broker.submit_order("AAA", 1))


def test_a_halt_from_another_process_takes_effect_before_the_next_order_and_survives_a_restart():
    venue = FakeVenue(fill_on_wait=True)
    strategy = Buyer()
    feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(4)])
    broker = VenueBroker(venue, strategy_id="buyer")
    LiveEngine(strategy, broker, feed, session_dir=False, settle_timeout=0.5).run()
    assert strategy.halt.returncode == 0, strategy.halt.stderr
    assert "trading state ACTIVE -> HALTED" in strategy.halt.stdout
    assert [o.status for o in strategy.orders[:1]] == [OrderStatus.FILLED]
    refused = strategy.orders[1:]  # from the order right after the halt (same bar) on
    assert [o.status for o in refused] == [OrderStatus.REJECTED] * 3
    assert "HALTED (fat finger)" in refused[0].rejection_reason
    assert "ml4t-live resume --strategy-id buyer" in refused[0].rejection_reason
    assert strategy.limit.status is OrderStatus.CANCELLED and venue.cancelled == [strategy.limit.order_id]

    resumed = operator("resume", "--strategy-id", "buyer")
    assert resumed.returncode == 0 and "HALTED -> ACTIVE" in resumed.stdout, resumed.stderr
    again = Buyer(halt_on=0)  # the restart replays bars 1-4 (same decisions), then bar 5 is live
    more = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(5)])
    LiveEngine(again, VenueBroker(venue, strategy_id="buyer"), more, session_dir=False,
               settle_timeout=0.5).run()  # fmt: skip
    assert [o.status for o in again.orders[1:4]] == [OrderStatus.REJECTED] * 3  # as journaled
    assert again.orders[-1].status is OrderStatus.FILLED  # bar 5 trades again


def test_halt_names_what_it_cannot_find():
    missing = operator("halt", "--strategy-id", "nobody")
    assert missing.returncode == 2
    assert "no journal for strategy nobody" in missing.stderr
