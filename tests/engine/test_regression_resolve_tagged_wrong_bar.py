"""Regression (found by review, fixed): A fill found at a warm restart (snapshot.executions, applied by _resolve_open_intents) is
journaled with the last REPLAYED bar's n. The next restart applies it before that bar's on_data,
i.e. before the strategy re-creates the order: Book drops it as 'not this strategy's', and a
deterministic strategy is reported as diverging (fail closed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ml4t.backtest import OrderSide, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.events import OrderFilled
from ml4t_live.protocols import AccountSnapshot, VenuePosition
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bars(n, start=0):
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0 + i}) for i in range(start, start + n)]


@dataclass
class VenueWithExecutions(FakeVenue):
    executions: list = field(default_factory=list)

    def snapshot(self):
        s = super().snapshot()
        return AccountSnapshot(s.account_id, s.is_paper, s.cash, s.equity, s.positions,
                               s.open_orders, list(self.executions))


class Deterministic(Strategy):
    def __init__(self):
        self.n = 0
        self.seen = []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        pos = broker.get_position("AAA")
        self.seen.append(pos.quantity if pos else 0)
        if self.n == 1:
            broker.submit_order("AAA", 10)
        if self.n == 2 and pos is not None and pos.quantity == 10:
            broker.submit_order("AAA", 5, OrderSide.SELL, OrderType.LIMIT, limit_price=1000.0)


def run(strategy, venue, feed_bars, state_dir):
    broker = VenueBroker(venue, strategy_id="det", state_dir=state_dir)
    return LiveEngine(strategy, broker, ListFeed(feed_bars), session_dir=False,
                      settle_timeout=0.1, open_orders_at_end="keep").run()


def test_second_restart_replays_a_fill_found_at_the_first(tmp_path):
    venue = VenueWithExecutions(fill_on_wait=False)
    run(Deterministic(), venue, bars(1), tmp_path)  # bar 1: buy 10 sent; "killed"
    cid = venue.placed[0].client_order_id
    # it filled while the process was down: the venue reports the execution at reconnect
    venue.executions = [OrderFilled(cid, "X1", "AAA", OrderSide.BUY, 10, 100.0, T0, 1.0, 10)]
    venue.positions["AAA"] = VenuePosition("AAA", 10, 100.0)
    second = Deterministic()
    run(second, venue, bars(3), tmp_path)  # replays bar 1, trades bars 2-3
    assert second.seen == [0, 10, 10]
    assert len(venue.placed) == 2  # bar 2's sell
    venue.executions = []  # another day: IB lists only today's executions
    third = Deterministic()
    run(third, venue, bars(4), tmp_path)  # replays bars 1-3: must see what the 2nd run saw
    assert third.seen[:3] == [0, 10, 10]
